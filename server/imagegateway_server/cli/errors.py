"""The failures a command expects, and the exit code each one ends the process with.

Each is printed as one ``error: CODE: message`` line on stderr (never a traceback): exit code 1
when the command ran and failed, 2 when the command line itself is wrong. Failures the gateway
reports arrive as the client library's ``ImageGatewayError`` and are printed by ``main``.
"""

from __future__ import annotations

import errno


class CommandError(Exception):
    """An expected failure: printed as ``error: CODE: message``, exit code 1 (ran) or 2 (usage)."""

    def __init__(self, code: str, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.exit_code = exit_code


def usage_error(message: str) -> CommandError:
    """A command line that cannot work (exit code 2), found after argparse accepted it."""
    return CommandError("INVALID_ARGUMENT", message, exit_code=2)


def file_error(action: str, path: str, exc: OSError) -> CommandError:
    """A file that cannot be read or written, with the status code that fits the OS error."""
    code = {errno.ENOENT: "NOT_FOUND", errno.EACCES: "PERMISSION_DENIED"}.get(exc.errno or 0, "UNKNOWN")
    return CommandError(code, f"cannot {action} {path}: {exc.strerror or exc}")
