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
  ``polaronflow status --json`` process (median of 5);
* opening the LaunchPad under its lock (``embedded_launchpad``: read the file), the first
  save after opening (it writes the whole file), a first ``checkout_fw`` (it also imports the
  task's modules, once per worker process), then for 3 jobs: ``checkout_fw`` (reserve a READY
  Firework, as a worker's rocket does), a save, ``complete_launch``, a save (medians);
* the same store saved the old way (``bson.json_util.dumps`` of every document, atomic write),
  in the same process, as the baseline.

The per-job LaunchPad overhead is checkout + completion + 3 saves (``launch`` saves when it
records a checkout, when the job's VASP starts and when the job ends); the JobStore's share is
read from bench_store.py's recorded section.

Usage::

    .venv/bin/python benchmarks/bench_launchpad.py [--sizes 100,500,2000] [--record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
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
import json, statistics, sys, time, tempfile
t0 = time.perf_counter()
from fireworks import FWAction, FWorker
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
    # the first save after opening encodes every document; later ones only the changed ones
    t = time.perf_counter()
    lp.polaronflow_checkpoint()
    t_first_save = time.perf_counter() - t
    # the first checkout imports what the Firework's task needs (once per worker process)
    t = time.perf_counter()
    fw, launch_id = lp.checkout_fw(FWorker(name="bench"), tempfile.mkdtemp())
    t_first = time.perf_counter() - t
    checkouts, completes, saves = [], [], []
    for _ in range(3):
        t = time.perf_counter()
        fw, launch_id = lp.checkout_fw(FWorker(name="bench"), tempfile.mkdtemp())
        checkouts.append(time.perf_counter() - t)
        assert fw is not None
        t = time.perf_counter()
        lp.polaronflow_checkpoint()
        saves.append(time.perf_counter() - t)
        t = time.perf_counter()
        lp.complete_launch(launch_id, FWAction(), "COMPLETED")
        completes.append(time.perf_counter() - t)
        t = time.perf_counter()
        lp.polaronflow_checkpoint()
        saves.append(time.perf_counter() - t)
    # status while a launch runs: the file plus a journal grown close to the size at which a
    # save rewrites the file (a fifth of it), read without the lock, in-process and whole
    import os, subprocess
    saved = lp.fireworks.database.client._store._pf_file
    ids = [d["fw_id"] for d in lp.fireworks.find({}, {"fw_id": 1})]
    i = 0
    while saved.journal_bytes < 0.2 * saved.snapshot_bytes:
        batch = ids[i % len(ids):i % len(ids) + 50]
        lp.fireworks.update_many({"fw_id": {"$in": batch}}, {"$set": {"spec._bench": i}})
        lp.polaronflow_checkpoint()
        i += 50
    journal_mb = saved.journal_bytes / 1e6
    t = time.perf_counter()
    campaign_status(load_settings(project_dir=project))
    t_status_journal = time.perf_counter() - t
    env = dict(os.environ, POLARONFLOW_PROJECT_DIR=project)
    walls, cpus = [], []
    for _ in range(5):
        t, c = time.perf_counter(), os.times()
        subprocess.run([sys.argv[2], "status", "--json"], env=env, check=True,
                       capture_output=True)
        walls.append(time.perf_counter() - t)
        c2 = os.times()
        cpus.append(c2.children_user - c.children_user + c2.children_system - c.children_system)
    # the save as it was before polaronflow's codec (bson.json_util over the whole store)
    import bson.json_util
    from polaronflow.fileio import write_text_atomic
    store = lp.fireworks.database.client._store
    t = time.perf_counter()
    write_text_atomic(f"{project}/launchpad.json", bson.json_util.dumps(store.to_dict()))
    t_old_save = time.perf_counter() - t
t = time.perf_counter()
t_close = time.perf_counter() - t
med = statistics.median
print(json.dumps({"status": t_status, "jobs": jobs, "open": t_open, "checkout": med(checkouts),
                  "first_checkout": t_first, "complete": med(completes), "save": med(saves),
                  "first_save": t_first_save, "old_save": t_old_save, "close": t_close,
                  "imports": t_import, "journal_mb": journal_mb,
                  "status_journal": t_status_journal, "cli_journal": med(walls),
                  "cli_journal_cpu": med(cpus)}))
"""

#: ``polaronflow launch`` saves the LaunchPad when it records a job's checkout, when the job's
#: VASP process group appears and when the job finishes.
SAVES_PER_JOB = 3


def _jobstore_share() -> float | None:
    """The JobStore's per-job launch overhead at 2,000 documents, as bench_store.py recorded."""
    import re

    from _results import RESULTS

    text = RESULTS.read_text() if RESULTS.is_file() else ""
    section = text.split("<!-- bench_store:start -->")[-1].split("<!-- bench_store:end -->")[0]
    found = re.search(r"launch overhead ([0-9.]+) s \(target", section)
    return float(found.group(1)) if found else None


def _cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def _run(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    t0, c0 = time.perf_counter(), _cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    _run.cpu = _cpu() - c0  # the child's CPU time (user + system)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed:\n{proc.stderr}")
    lines = proc.stdout.strip().splitlines()
    return wall, lines[-1] if lines else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,500,2000")
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
            env = dict(os.environ, POLARONFLOW_PROJECT_DIR=str(copy))
            # the whole process, median of 5 (one process each), before the measurement below
            # adds launches to the copy
            walls, cpus = [], []
            for _ in range(5):
                walls.append(_run([str(CLI), "status", "--json"], env=env)[0])
                cpus.append(_run.cpu)
            rec = {"cli": statistics.median(walls), "cli_cpu": statistics.median(cpus)}
            _, line = _run([sys.executable, "-c", MEASURE, str(copy), str(CLI)])
            rec.update({"size": fill["fireworks"], "mb": size_mb, **json.loads(line)})
            assert rec["jobs"] == fill["fireworks"], rec
            rows.append(rec)
            print(
                f"{rec['size']:5d} FWs ({size_mb:.0f} MB): status {rec['status']:.2f} s "
                f"(whole CLI {rec['cli']:.2f} s), open {rec['open']:.2f} s, checkout "
                f"{rec['checkout']:.3f} s, complete {rec['complete']:.3f} s, save "
                f"{rec['save']:.3f} s (first {rec['first_save']:.2f} s, bson.json_util "
                f"{rec['old_save']:.2f} s) (fill {t_fill:.0f} s)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = [
        "| Fireworks | launchpad.json (MB) | `campaign_status` (s) | `polaronflow status --json`"
        " process, median of 5: wall (CPU) (s) | open under lock (s) | `checkout_fw`, first /"
        " next (s) |"
        " `complete_launch` (s) | checkpoint save: first after open / next (s) | save with"
        " bson.json_util, as before (s) | during a launch: journal (MB), `campaign_status` /"
        " process wall (CPU) (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        table.append(
            f"| {r['size']} | {r['mb']:.0f} | {r['status']:.2f} | {r['cli']:.2f} "
            f"({r['cli_cpu']:.2f}) | "
            f"{r['open']:.2f} | {r['first_checkout']:.2f} / {r['checkout']:.3f} | "
            f"{r['complete']:.3f} | {r['first_save']:.2f} / {r['save']:.3f} | "
            f"{r['old_save']:.2f} | {r['journal_mb']:.1f}: {r['status_journal']:.2f} / "
            f"{r['cli_journal']:.2f} ({r['cli_journal_cpu']:.2f}) |"
        )
    first, big = rows[0], rows[-1]
    per_job = big["checkout"] + big["complete"] + SAVES_PER_JOB * big["save"]
    store = _jobstore_share()
    total = per_job + (store or 0.0)
    growth = " → ".join(str(r["size"]) for r in rows)
    verdict = [
        f"- growth {growth} Fireworks: `status` process "
        + " → ".join(f"{r['cli']:.2f}" for r in rows)
        + " s, checkout "
        + " → ".join(f"{r['checkout']:.3f}" for r in rows)
        + " s, save "
        + " → ".join(f"{r['save']:.3f}" for r in rows)
        + " s (bson.json_util: "
        + " → ".join(f"{r['old_save']:.2f}" for r in rows)
        + " s)",
        f"- at {big['size']} Fireworks: `campaign_status` {big['status']:.2f} s, the whole "
        f"`status` process {big['cli']:.2f} s wall, {big['cli_cpu']:.2f} s CPU (target <= 1 s: "
        f"{'met' if big['cli'] <= 1 else 'NOT met'} in wall time); during a launch, with a "
        f"{big['journal_mb']:.1f} MB journal (a fifth of the file; past a quarter a save "
        "rewrites the file), "
        f"{big['status_journal']:.2f} s in-process and {big['cli_journal']:.2f} s wall, "
        f"{big['cli_journal_cpu']:.2f} s CPU for the process (target: "
        f"{'met' if big['cli_journal'] <= 1 else 'NOT met'} in wall time). On this shared "
        "machine wall time exceeds CPU time by the wait for a core",
        f"- per job at {big['size']} Fireworks: checkout {big['checkout']:.3f} + completion "
        f"{big['complete']:.3f} + {SAVES_PER_JOB} saves × {big['save']:.3f} (`launch` saves at "
        f"the checkout, when VASP starts and when the job ends) = {per_job:.2f} s on the "
        "LaunchPad"
        + (
            f", + {store:.3f} s JobStore share (bench_store.py's recorded launch overhead at "
            f"2,000 documents) = {total:.2f} s (target <= 0.3 s: "
            f"{'met' if total <= 0.3 else 'NOT met'})"
            if store is not None
            else " (no bench_store.py figure recorded for the JobStore share)"
        ),
        f"- once per opening: reading the file under the lock {big['open']:.2f} s and the first "
        f"save {big['first_save']:.2f} s (it encodes every document; `launch` opens once); "
        f"at {first['size']} Fireworks {first['open']:.2f} s and {first['first_save']:.2f} s",
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
                    "excluded except in the whole-process column); checkout, completion and "
                    "save are medians of 3 jobs. `runtime/lpfile.py`: one parse of the file, "
                    "saves after the first append the changed documents to "
                    "`launchpad.journal` (the first writes the whole file), `find_one` copies "
                    "the first match only; `status` reads the file without FireWorks "
                    "(`status.embedded_status`). The last column saves the same store the old "
                    "way (bson.json_util over every document, whole file), in the same "
                    "process; before this change (recorded 2026-12-01 00:47, 2,016 "
                    "Fireworks) `status` took 1.14 s, checkout 0.113 s and each save 0.66 s.",
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
