"""What commands read besides their flags: secrets from stdin, and files (``-`` meaning stdin).

Secrets are never taken from the command line, where other users of the machine can see them.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from imagegateway_server.cli.errors import file_error, usage_error


def read_secret(prompt: str) -> str:
    """A secret from stdin (a prompt without echo on a terminal), without its trailing newline."""
    value = getpass.getpass(f"{prompt}: ") if sys.stdin.isatty() else sys.stdin.read()
    value = value.rstrip("\r\n")
    if not value:
        raise usage_error(f"no {prompt} on stdin")
    return value


def read_text(path: str) -> str:
    """The UTF-8 text of ``path``, or of stdin for ``-``."""
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise file_error("read", path, exc) from None
