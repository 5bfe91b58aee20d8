"""Shared by the benchmark scripts: the machine's CPU name and RESULTS.md section writing."""

from __future__ import annotations

import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (or what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def record_section(start: str, end: str, section: str) -> None:
    """Replace the ``start``…``end`` section of RESULTS.md (appended when missing)."""
    text = RESULTS.read_text() if RESULTS.is_file() else "# Recorded benchmark results\n\n"
    section = section.rstrip("\n") + "\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text)
    print(f"recorded in {RESULTS}")
