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


def bytecode_note() -> str:
    """Whether imports ran from cached byte-code (``PYTHONDONTWRITEBYTECODE`` may be set here).

    Checks the ``__pycache__`` of one installed dependency (atomate2) and of polaronflow itself:
    without .pyc files every child process compiles the modules it imports.
    """
    import importlib.util
    import os
    import sys

    def cached(module: str) -> str:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            return "n/a"
        return "yes" if Path(importlib.util.cache_from_source(spec.origin)).is_file() else "no"

    flag = os.environ.get("PYTHONDONTWRITEBYTECODE")
    return (
        f"byte-code: PYTHONDONTWRITEBYTECODE={flag or 'unset'} "
        f"(sys.dont_write_bytecode={sys.dont_write_bytecode}); .pyc cached for "
        f"site-packages (atomate2.vasp.jobs.base): {cached('atomate2.vasp.jobs.base')}, "
        f"for polaronflow (polaronflow.workflows.vasp.makers): "
        f"{cached('polaronflow.workflows.vasp.makers')}"
    )
