"""How long ago this process was launched, for the "imagegateway serving" log line.

A slow start is either the interpreter loading the server (CPU: seconds on a busy machine) or the
start itself waiting on a backend (the database, Redis). The serving line gives both figures, the
process's age from the kernel's own record of its start time and the start's own duration, so the
next slow restart says which it was.
"""

from __future__ import annotations

import os
from pathlib import Path

# starttime is field 22 of /proc/<pid>/stat; split after the command name, field 3 comes first.
_START_TIME_INDEX = 22 - 3


def seconds_since_launch() -> float | None:
    """Seconds since the kernel created this process; None where /proc cannot tell (not Linux)."""
    try:
        stat = Path("/proc/self/stat").read_text()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        # The command name may hold spaces and parentheses: the fields after it follow the last ')'.
        start_ticks = int(stat.rsplit(")", 1)[1].split()[_START_TIME_INDEX])
        ticks_per_second = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return round(max(0.0, uptime - start_ticks / ticks_per_second), 3)
