"""What every benchmark script shares: the machine line and updating RESULTS.md in place.

Each script owns one ``## Heading`` section of ``benchmarks/RESULTS.md`` (or one ``###``
subsection under a shared heading) and replaces only that, so the scripts can be run in any
order and one at a time.
"""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
TITLE = "# Benchmark results\n"


def machine() -> str:
    """``Measured <when> UTC on x86_64, 2 cores, 24 GiB, Python 3.11.7`` for this machine."""
    memory = ""
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
        memory = f", {round(kib / 1024 / 1024)} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores{memory}, Python {platform.python_version()}"
    )


def _span(text: str, heading: str) -> tuple[int, int] | None:
    """Where ``heading``'s block is: from its line to the next heading of its level or higher."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines(keepends=True)
    offset, start = 0, None
    for line in lines:
        if start is None and line.rstrip("\n") == heading:
            start = offset
        elif start is not None:
            marks = line.split(" ", 1)[0]
            if marks and set(marks) == {"#"} and len(marks) <= level:
                return start, offset
        offset += len(line)
    return None if start is None else (start, len(text))


def _put(text: str, heading: str, block: str) -> str:
    span = _span(text, heading)
    if span is None:
        return text.rstrip("\n") + "\n\n" + block
    start, end = span
    return text[:start] + block + ("\n" if end < len(text) else "") + text[end:]


def write_section(heading: str, body: str, *, under: str | None = None, intro: str = "") -> None:
    """Replace ``heading``'s block of RESULTS.md with ``heading`` + ``body``.

    With ``under`` (a ``## `` heading), ``heading`` is a ``### `` subsection of that section,
    which is created (with ``intro``) when missing; the other subsections stay.
    """
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else TITLE
    block = f"{heading}\n\n{body.strip()}\n"
    if under is None:
        text = _put(text, heading, block)
    else:
        if _span(text, under) is None:
            text = _put(text, under, f"{under}\n\n{intro}".rstrip() + "\n")
        start, end = _span(text, under)
        text = (
            text[:start]
            + _put(text[start:end].rstrip("\n") + "\n", heading, block)
            + ("\n" + text[end:] if end < len(text) else "")
        )
    RESULTS.write_text(text, encoding="utf-8")
