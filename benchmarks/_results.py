"""Shared by the benchmark scripts: the machine's CPU name, RESULTS.md section writing and
child Python processes measured whole."""

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


def run_python(code: str, *args: str) -> tuple[float, float, str]:
    """Run ``code`` in a child Python with ``args``; return (wall s, peak RSS MB of the child,
    the last line it printed). Exits with the child's stderr when it fails."""
    import os
    import subprocess
    import sys
    import time

    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out, err = proc.stdout.read(), proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child failed:\n{err}")
    lines = out.strip().splitlines()
    return wall, usage.ru_maxrss / 1024, lines[-1] if lines else ""
