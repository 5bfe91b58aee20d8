"""Run every benchmark and record its results in benchmarks/RESULTS.md (``make bench``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    "bench_emulator_scale.py",
    "bench_analyze.py",
    "bench_workflows.py",
    "bench_taskdoc.py",
    "bench_store.py",
    "bench_launchpad.py",
)


def main() -> int:
    status = 0
    for script in SCRIPTS:
        print(f"== {script}", flush=True)
        status |= subprocess.call([sys.executable, str(HERE / script), "--record"])
    return status


if __name__ == "__main__":
    sys.exit(main())
