"""Benchmark: the embedded LaunchPad's share of ``status`` and of each job's launch overhead.

Targets (issue 16), with 2,000 jobs: ``polaronflow status`` <= 1 s; the per-job launch
overhead (checkout, save, store) <= 0.3 s. ``status`` reads only the LaunchPad (not the
JobStore), and the checkout and save of a job are LaunchPad operations: this script measures
those as the LaunchPad grows (the JobStore's share, the "store" part, is in
``bench_store.py``).

The LaunchPad holds real campaign workflows: the Flow of ``polaronflow submit --ions Mg``
converted by jobflow's ``flow_to_workflow``, added again and again (FireWorks gives each copy
new ids) until the LaunchPad holds about N Fireworks. For each N, fresh child processes time:

* ``campaign_status`` (what ``polaronflow status`` computes) and the whole
  ``polaronflow status --json`` process;
* opening the LaunchPad under its lock (``embedded_launchpad``: load the file), two
  ``checkout_fw`` (reserve a READY Firework, as a worker's rocket does; the first one also
  imports the task's modules, once per worker process) and one ``polaronflow_checkpoint``
  (the atomic save ``launch`` does when a job finishes).

Usage::

    .venv/bin/python benchmarks/bench_launchpad.py [--sizes 100,2000] [--record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import bytecode_note, cpu_name, record_section

START, END = "<!-- bench_launchpad:start -->", "<!-- bench_launchpad:end -->"
HERE = Path(__file__).resolve().parent
CLI = HERE.parent / ".venv" / "bin" / "polaronflow"

FILL = r"""
import json, sys
from fireworks import Workflow
from jobflow.managers.fireworks import flow_to_workflow
from polaronflow.workflows.campaign.maker import build_campaign
from polaronflow.workflows.runtime.submit import embedded_launchpad

project, target = sys.argv[1], int(sys.argv[2])
wf = flow_to_workflow(build_campaign(ions=["Mg"]))
spec = wf.as_dict()
with embedded_launchpad(project) as lp:
    have = lp.fireworks.count_documents({})
    i = 0
    while have < target:
        copy = Workflow.from_dict(spec)
        copy.name = f"campaign-{have}"
        lp.add_wf(copy)
        have = lp.fireworks.count_documents({})
print(json.dumps({"fireworks": have, "per_workflow": len(wf.fws)}))
"""

MEASURE = r"""
import json, sys, time, tempfile
t0 = time.perf_counter()
from fireworks import FWorker
from polaronflow.settings import load_settings
from polaronflow.workflows.runtime.status import campaign_status
from polaronflow.workflows.runtime.submit import embedded_launchpad
project = sys.argv[1]
t_import = time.perf_counter() - t0
t = time.perf_counter()
status = campaign_status(load_settings(project_dir=project))
t_status = time.perf_counter() - t
jobs = sum(len(w.fireworks) for w in status.workflows)
t = time.perf_counter()
with embedded_launchpad(project) as lp:
    t_open = time.perf_counter() - t
    # the first checkout imports what the Firework's task needs (once per worker process)
    t = time.perf_counter()
    fw, launch_id = lp.checkout_fw(FWorker(name="bench"), tempfile.mkdtemp())
    t_first = time.perf_counter() - t
    t = time.perf_counter()
    fw, launch_id = lp.checkout_fw(FWorker(name="bench"), tempfile.mkdtemp())
    t_checkout = time.perf_counter() - t
    assert fw is not None
    t = time.perf_counter()
    lp.polaronflow_checkpoint()
    t_save = time.perf_counter() - t
    t = time.perf_counter()
t_close = time.perf_counter() - t
print(json.dumps({"status": t_status, "jobs": jobs, "open": t_open, "checkout": t_checkout,
                  "first_checkout": t_first,
                  "save": t_save, "close": t_close, "imports": t_import}))
"""


def _run(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed:\n{proc.stderr}")
    lines = proc.stdout.strip().splitlines()
    return wall, lines[-1] if lines else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,2000")
    parser.add_argument("--record", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pf-lp-bench-"))
    project = work / "project"
    rows = []
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            t_fill, line = _run([sys.executable, "-c", FILL, str(project), str(size)])
            fill = json.loads(line)
            size_mb = (project / "launchpad.json").stat().st_size / 1e6
            # a copy per measurement: checkout reserves a Firework
            copy = work / "measure"
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(project, copy)
            _, line = _run([sys.executable, "-c", MEASURE, str(copy)])
            rec = {"size": fill["fireworks"], "mb": size_mb, **json.loads(line)}
            assert rec["jobs"] == fill["fireworks"], rec
            env = dict(os.environ, POLARONFLOW_PROJECT_DIR=str(copy))
            rec["cli"], _ = _run([str(CLI), "status", "--json"], env=env)
            rows.append(rec)
            print(
                f"{rec['size']:5d} FWs ({size_mb:.0f} MB): status {rec['status']:.2f} s "
                f"(whole CLI {rec['cli']:.2f} s), open {rec['open']:.2f} s, checkout "
                f"{rec['checkout']:.3f} s, save {rec['save']:.2f} s (fill {t_fill:.0f} s)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = [
        "| Fireworks | launchpad.json (MB) | `campaign_status` (s) | `polaronflow status --json`"
        " process (s) | open under lock (s) | `checkout_fw`, first / next (s) | checkpoint save"
        " (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        table.append(
            f"| {r['size']} | {r['mb']:.0f} | {r['status']:.2f} | {r['cli']:.2f} | "
            f"{r['open']:.2f} | {r['first_checkout']:.2f} / {r['checkout']:.3f} | "
            f"{r['save']:.2f} |"
        )
    big = rows[-1]
    per_job = big["checkout"] + big["save"]
    verdict = [
        f"- at {big['size']} Fireworks: `campaign_status` {big['status']:.2f} s, the whole "
        f"`status` process {big['cli']:.2f} s (target <= 1 s: "
        f"{'met' if big['cli'] <= 1 else 'NOT met'}); checkout + save per job "
        f"{per_job:.2f} s (with the JobStore's share from bench_store.py, target <= 0.3 s: "
        f"{'met' if per_job <= 0.3 else 'NOT met'})",
    ]
    print("\n".join([*table, "", *verdict]))
    if args.record:
        record_section(
            START,
            END,
            "\n".join(
                [
                    START,
                    "## Embedded LaunchPad: `status`, checkout and save as it grows",
                    "",
                    f"Recorded {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by "
                    f"`benchmarks/bench_launchpad.py` on {os.cpu_count()} cores ({cpu_name()}), "
                    f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f} "
                    "at the end (a shared, busy machine).",
                    bytecode_note() + ".",
                    "LaunchPad: copies of the real `submit --ions Mg` workflow (jobflow "
                    "`flow_to_workflow`), one fresh child process per measurement (imports "
                    "excluded except in the whole-process column). Measured only: the LaunchPad "
                    "code (`runtime/submit.py`, `status.py`, `launch.py`) is another engineer's.",
                    "",
                    *table,
                    "",
                    *verdict,
                    "",
                    "Reproduce: `.venv/bin/python benchmarks/bench_launchpad.py --record`.",
                    END,
                ]
            ),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
