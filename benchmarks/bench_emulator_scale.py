"""Benchmark: the emulator writes a production-size run within the time and memory targets.

Target (issue 6): 257 atoms, LORBIT = 11, ISPIN = 2, NBANDS ~ 1200, NEDOS 3001, 4 k-points:
a ~400 MB vasprun.xml in <= 30 s with <= 300 MB peak RSS. Each measurement runs
``write_large_run`` in a fresh child process (wall time, and the child's peak RSS from
``wait4``). The full-size file is then parsed by pymatgen's ``Vasprun`` with warnings turned
into errors (the "parses without warnings" check at full size).

Usage::

    .venv/bin/python benchmarks/bench_emulator_scale.py [--repeats 3] [--no-parse] [--record]

``--record`` rewrites this benchmark's section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from _results import cpu_name, record_section, run_python

HERE = Path(__file__).resolve().parent
START, END = "<!-- bench_emulator_scale:start -->", "<!-- bench_emulator_scale:end -->"

WRITE = """
import sys
from polaronflow.emulator import write_large_run
write_large_run(sys.argv[1], natoms=257, nbands=1200, nedos=3001, nkpts=4)
"""
PARSE = """
import sys, warnings
warnings.simplefilter("error")
from pymatgen.io.vasp import Vasprun
vr = Vasprun(sys.argv[1] + "/vasprun.xml", parse_potcar_file=False)
assert len(vr.final_structure) == 257 and vr.parameters["LORBIT"] == 11
print(len(vr.complete_dos.pdos), vr.parameters["NBANDS"], vr.efermi)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-parse", action="store_true", help="skip the pymatgen parse")
    parser.add_argument("--record", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pf-emu-bench-"))
    try:
        walls, rss = [], []
        for i in range(args.repeats):
            dest = work / f"run{i}"
            wall, peak, _ = run_python(WRITE, str(dest))
            walls.append(wall)
            rss.append(peak)
            print(f"write {i + 1}/{args.repeats}: {wall:.2f} s, peak RSS {peak:.0f} MB")
        size = (work / "run0" / "vasprun.xml").stat().st_size / 1e6
        outcar = (work / "run0" / "OUTCAR").stat().st_size / 1e6
        parse = None
        if not args.no_parse:
            parse = run_python(PARSE, str(work / "run0"))
            print(
                f"pymatgen Vasprun (warnings as errors): {parse[0]:.1f} s, "
                f"{parse[1]:.0f} MB, ok ({parse[2]})"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    wall_med, rss_max = statistics.median(walls), max(rss)
    ok_time, ok_mem = wall_med <= 30.0, rss_max <= 300.0
    print(
        f"median {wall_med:.2f} s (target <= 30 s: {'met' if ok_time else 'NOT met'}), "
        f"max peak RSS {rss_max:.0f} MB (target <= 300 MB: {'met' if ok_mem else 'NOT met'})"
    )
    if args.record:
        _record(walls, rss, size, outcar, parse, ok_time, ok_mem)
    return 0 if ok_time and ok_mem else 1


def _record(walls, rss, size, outcar, parse, ok_time, ok_mem) -> None:
    cpu = cpu_name()
    load = os.getloadavg()[0]
    lines = [
        START,
        "## Emulator: writing a production-size run (`write_large_run`)",
        "",
        f"Recorded {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by "
        f"`benchmarks/bench_emulator_scale.py` on {os.cpu_count()} cores ({cpu}), "
        f"Python {platform.python_version()}; load average {load:.1f} at the end.",
        "Run: 257 atoms (W64 O192 Mg), LORBIT = 11, ISPIN = 2, NBANDS 1200, NEDOS 3001, "
        f"4 k-points; vasprun.xml {size:.0f} MB, OUTCAR {outcar:.1f} MB (synthetic, marked "
        "POLARONFLOW-SYNTHETIC). Each write in a fresh child process.",
        "",
        "| measurement | value | target |",
        "|---|---|---|",
        f"| write wall time, median of {len(walls)} (s) | {statistics.median(walls):.2f} "
        f"(min {min(walls):.2f}, max {max(walls):.2f}) | <= 30: "
        f"{'met' if ok_time else 'NOT met'} |",
        f"| write peak RSS, max (MB) | {max(rss):.0f} | <= 300: {'met' if ok_mem else 'NOT met'} |",
    ]
    if parse is not None:
        lines.append(
            f"| pymatgen `Vasprun` of the full file, warnings as errors (s / MB) | "
            f"{parse[0]:.1f} / {parse[1]:.0f} | parses, no warnings: met |"
        )
    lines.append(END)
    record_section(START, END, "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
