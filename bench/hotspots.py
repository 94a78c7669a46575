"""Summarises a py-spy `--format raw` profile (collapsed stacks: `frame;frame;... count`).

    python bench/hotspots.py bench/out/profile-rest.txt [--top 25]

Prints, as a share of all samples of the process: samples per thread, the functions with the most
self time, and inclusive time of the gateway's own functions and of the library calls that matter
for a gateway (base64, JSON, protobuf JSON, hashing, sqlite, HTTP parsing, gRPC).
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

# Inclusive buckets: label -> regex over one frame "function (path:line)".
BUCKETS: dict[str, str] = {
    "base64 (pybase64 / base64)": r"^b64(en|de)code \(",
    "json / orjson": r"^(loads|dumps) \(",
    "protobuf MessageToJson (log record)": r"^MessageToJson \(",
    "aiosqlite / sqlite (log writer, keys)": r"aiosqlite",
    "aiohttp (upstream client)": r"(aiohttp|multidict|yarl)/",
    "httptools / h11 (HTTP/1.1 parsing)": r"(httptools|h11)/",
    "uvicorn": r"uvicorn/",
    "starlette": r"starlette/",
    "grpc (aio server, cython)": r"(grpc/|grpc\._cython|\.pyx)",
    "prometheus_client": r"prometheus_client/",
    "logging": r"logging/__init__\.py",
    "asyncio event loop internals": r"asyncio/(base_events|selector_events|events)\.py",
    "uvloop": r"uvloop",
}

_OWN = "imagegateway_server/"
_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>.+?)(?::(?P<line>\d+))?\)$")


def read_raw(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        stacks.append((stack.split(";"), int(count)))
    return stacks


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    file = match["file"]
    for marker in ("site-packages/", "lib/python3", "/work/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    file = re.sub(r"^\.\d+/", "", file)
    return f"{match['func']} ({file})"


def _function_key(frame: str) -> str:
    """A frame without its line number, so one function aggregates across lines."""
    return _short(re.sub(r":\d+\)$", ")", frame))


def _thread(stack: list[str]) -> str:
    head = stack[0]
    return head if head.startswith(("thread", "process")) else "?"


def summarize(path: Path, top: int = 25, brief: bool = False, inclusive_top: int = 0) -> str:
    """The text summary; ``brief`` keeps threads, self time and self time by package only (plus the
    ``inclusive_top`` gateway functions with the most inclusive time, when given)."""
    stacks = read_raw(path)
    total = sum(count for _, count in stacks) or 1
    out: list[str] = [f"profile {path.name}: {total} samples"]

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f}%"

    threads: collections.Counter[str] = collections.Counter()
    for stack, count in stacks:
        threads[_thread(stack)] += count
    out.append("\nsamples by thread:")
    out += [f"  {pct(n)}  {name}" for name, n in threads.most_common(8)]

    self_time: collections.Counter[str] = collections.Counter()
    for stack, count in stacks:
        self_time[_function_key(stack[-1])] += count
    out.append(f"\ntop {top} self time:")
    out += [f"  {pct(n)}  {name}" for name, n in self_time.most_common(top)]

    packages: collections.Counter[str] = collections.Counter()
    for stack, count in stacks:
        packages[_package(stack[-1])] += count
    out.append("\nself time by package (where the CPU actually goes):")
    out += [f"  {pct(n)}  {name}" for name, n in packages.most_common(top)]

    if brief:
        if inclusive_top:
            out += _own_inclusive(stacks, inclusive_top, pct)
        return "\n".join(out)

    own_lines: collections.Counter[str] = collections.Counter()
    for stack, count in stacks:
        if _OWN in stack[-1]:
            own_lines[_short(stack[-1])] += count
    out.append(f"\ntop {top} self time on gateway lines (C calls made there, e.g. hashlib, protobuf):")
    out += [f"  {pct(n)}  {name}" for name, n in own_lines.most_common(top)]

    out += _own_inclusive(stacks, top, pct)

    buckets: collections.Counter[str] = collections.Counter()
    for stack, count in stacks:
        for label, pattern in BUCKETS.items():
            if any(re.search(pattern, f) for f in stack):
                buckets[label] += count
    out.append("\nlibrary buckets, inclusive (a sample can be in several):")
    out += [f"  {pct(n)}  {label}" for label, n in buckets.most_common()]
    return "\n".join(out)


def _own_inclusive(stacks: list[tuple[list[str], int]], top: int, pct: Callable[[int], str]) -> list[str]:
    own: collections.Counter[str] = collections.Counter()
    for stack, count in stacks:
        for key in _unique(_function_key(f) for f in stack if _OWN in f):
            own[key] += count
    # The process's entry functions (serve, main) hold every sample of the loop thread and say nothing.
    everything = max(own.values(), default=0)
    shown = [(name, n) for name, n in own.most_common() if n < everything][:top]
    return [f"\ntop {top} gateway functions, inclusive:", *(f"  {pct(n)}  {name}" for name, n in shown)]


def _package(frame: str) -> str:
    """The top-level module of a frame's file (`httpcore`, `json`, `base64`), or the gateway's subpackage."""
    match = _FRAME.match(frame)
    if not match:
        return frame.split(" (")[0]
    file = match["file"]
    for marker in ("site-packages/", "lib/python3."):
        if marker in file:
            file = file.split(marker, 1)[1]
            file = file.split("/", 1)[1] if marker == "lib/python3." else file
    parts = file.split("/")
    if parts[0] == "imagegateway_server" and len(parts) > 1:
        return "imagegateway_server." + parts[1].removesuffix(".py")
    return parts[0].removesuffix(".py")


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("raw", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    for path in args.raw:
        print(summarize(path, args.top))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
