"""Benchmark: the embedded JobStore as it grows from 100 to 2,000 task documents.

Targets (issue 16), with 2,000 task documents: a query by uuid <= 20 ms, the per-job launch
overhead on the store (connect, read the parent's output, save the new output) <= 0.3 s.

The documents are real: the emulator writes a 257-atom ``LORBIT = 11`` static, polaronflow's
``ScanUStaticMaker`` post-processing builds its task document (with the analysis summary),
and each stored document is what jobflow saves for a job (``uuid``, ``index``, ``output``,
``completed_at``, ``metadata``, ``hosts``, ``name``) with its uuid, name and folder varied.

Both backends grow side by side: the montydb store polaronflow used before
(``SharedMontyStore``: maggma's ``MontyStore``, montydb's SQLite storage, no indexes) and
``SQLiteStore`` (indexed fields). At each size a fresh child process per backend measures:

* ``query_one`` by uuid, as jobflow resolves a reference (``{"uuid": u}``, properties
  ``output``, sort ``index`` descending): median over several uuids;
* ``collect``'s query of every finished job (``run_folders``: name, folder, completion time);
* the per-job launch overhead on the store: a new JobStore object, ``connect``, the parent's
  output (``get_output``), and ``update`` of the job's own output (then removed again).

Usage::

    .venv/bin/python benchmarks/bench_store.py [--sizes 100,500,1000,2000] [--record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _results import bytecode_note, cpu_name, record_section, run_python

START, END = "<!-- bench_store:start -->", "<!-- bench_store:end -->"

MAKE_DOC = r"""
import json, sys
from pathlib import Path
from polaronflow.emulator import write_large_run
from polaronflow.workflows.vasp.postrun import SUMMARY_KEY, lean_task_document, run_summary

run = write_large_run(sys.argv[1], natoms=257, nbands=600, nedos=301, nkpts=1)
doc = lean_task_document(run)
doc.additional_json[SUMMARY_KEY] = run_summary(run)
Path(sys.argv[2]).write_text(doc.model_dump_json())
"""

#: Opens the store of one backend (the code polaronflow used, and the new one).
OPEN = {
    "montydb": (
        "from jobflow import JobStore\n"
        "from polaronflow.workflows.runtime.montystore import SharedMontyStore\n"
        "def open_store(path):\n"
        "    kw = dict(database_path=path, database_name='polaronflow')\n"
        "    return JobStore(SharedMontyStore('outputs', **kw),\n"
        "                    additional_stores={'data': SharedMontyStore('outputs_blobs', **kw)})\n"
    ),
    "sqlite": (
        "from jobflow import JobStore\n"
        "from polaronflow.workflows.runtime.montystore import embedded_stores\n"
        "def open_store(path):\n"
        "    docs, blobs = embedded_stores(path)\n"
        "    return JobStore(docs, additional_stores={'data': blobs})\n"
    ),
}

MEASURE = r"""
import json, statistics, sys, time
t0 = time.perf_counter()
from polaronflow.workflows.runtime.collect import run_folders
path, uuids, newdoc = sys.argv[1], json.loads(sys.argv[2]), json.loads(open(sys.argv[3]).read())
store = open_store(path)
store.connect()
t_connect = time.perf_counter() - t0

def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out

by_uuid = []
for u in uuids:
    dt_, doc = timed(lambda: store.query_one({"uuid": u}, properties=["output"],
                                             sort={"index": -1}))
    assert doc is not None and doc["uuid"] == u
    by_uuid.append(dt_)
t_collect, folders = timed(lambda: run_folders(store))
count = store.count()
launch = []
for i, parent in enumerate(uuids[: int(sys.argv[4])]):
    t = time.perf_counter()
    fresh = open_store(path)          # what a worker does per job
    fresh.connect()
    fresh.get_output(parent)          # resolve the job's input reference
    doc = dict(newdoc, uuid=f"launch-{i}", name=f"launch-{i}")
    fresh.update(doc, key=["uuid", "index"])   # save the job's output
    launch.append(time.perf_counter() - t)
    fresh.remove_docs({"uuid": f"launch-{i}"})
print(json.dumps({"connect": t_connect, "uuid": statistics.median(by_uuid),
                  "uuid_max": max(by_uuid), "collect": t_collect, "folders": len(folders),
                  "count": count, "launch": statistics.median(launch)}))
"""


def _job_doc(output: dict, i: int) -> dict:
    """What jobflow stores for a finished job, for job ``i``."""
    name = f"ramp-u{i % 10}-{i:04d}"
    output = dict(output, dir_name=f"localhost:/scratch/campaign/launches/launcher_{i:05d}")
    return {
        "uuid": str(uuid.UUID(int=i + 1)),
        "index": 1,
        "output": output,
        "completed_at": (dt.datetime(2026, 11, 1) + dt.timedelta(minutes=i)).isoformat(),
        "metadata": {"polaronflow": {"job_name": name, "role": "ramp"}},
        "hosts": [str(uuid.UUID(int=10**6 + i % 7))],
        "name": name,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,500,1000,2000", help="SQLiteStore sizes")
    parser.add_argument(
        "--montydb-sizes",
        default="50,100,200",
        help="montydb sizes (each query decodes every document: 2,000 would take hours)",
    )
    parser.add_argument("--uuids", type=int, default=7, help="uuid queries per measurement")
    parser.add_argument("--record", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    montydb_sizes = [int(s) for s in args.montydb_sizes.split(",") if s]
    work = Path(tempfile.mkdtemp(prefix="pf-store-bench-"))
    try:
        doc_file = work / "taskdoc.json"
        run_python(MAKE_DOC, str(work / "run"), str(doc_file))
        shutil.rmtree(work / "run")
        output = json.loads(doc_file.read_text())
        doc_kb = len(json.dumps(_job_doc(output, 0))) / 1024
        print(f"task document: {doc_kb:.0f} kB as JSON")
        new_file = work / "newdoc.json"
        new_file.write_text(json.dumps(_job_doc(output, 10**5)))
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from polaronflow.workflows.runtime.montystore import SharedMontyStore, embedded_stores

        paths = {b: work / b for b in OPEN}
        stores = {
            "montydb": SharedMontyStore(
                "outputs", database_path=str(paths["montydb"]), database_name="polaronflow"
            ),
            "sqlite": embedded_stores(paths["sqlite"])[0],
        }
        for s in stores.values():
            s.connect()
        plan = {"montydb": montydb_sizes, "sqlite": sizes}
        rows: list[dict] = []
        have = dict.fromkeys(OPEN, 0)
        for size in sorted(set(sizes) | set(montydb_sizes)):
            for backend, s in stores.items():
                if size not in plan[backend]:
                    continue
                # Bulk-fill, then time maggma's update (an upsert by key) for the last few.
                last = max(have[backend], size - 3)
                if backend == "montydb":  # montydb's upsert scans: fill it with insert_many
                    batch = [_job_doc(output, i) for i in range(have[backend], last)]
                    if batch:
                        s._collection.insert_many(batch)
                else:
                    for i in range(have[backend], last):
                        s.update(_job_doc(output, i), key=["uuid", "index"])
                t = time.perf_counter()
                for i in range(last, size):
                    s.update(_job_doc(output, i), key=["uuid", "index"])
                insert = (time.perf_counter() - t) / max(1, size - last)
                have[backend] = size
                step = max(1, size // args.uuids)
                uuids = [str(uuid.UUID(int=i + 1)) for i in range(0, size, step)][: args.uuids]
                launches = "1" if backend == "montydb" else "3"
                wall, peak, line = run_python(
                    OPEN[backend] + MEASURE,
                    str(paths[backend]),
                    json.dumps(uuids if backend == "sqlite" else uuids[:3]),
                    str(new_file),
                    launches,
                )
                rec = {
                    "size": size,
                    "backend": backend,
                    **json.loads(line),
                    "wall": wall,
                    "peak": peak,
                    "insert": insert,
                }
                assert rec["count"] == size and rec["folders"] == size, rec
                rows.append(rec)
                print(
                    f"{size:5d} {backend:8s} uuid {rec['uuid'] * 1e3:8.1f} ms  collect "
                    f"{rec['collect']:7.2f} s  launch {rec['launch']:7.3f} s  insert "
                    f"{rec['insert'] * 1e3:6.1f} ms/doc  process {wall:5.1f} s  {peak:4.0f} MB"
                )
        disk = {
            b: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) / 1e6
            for b, p in paths.items()
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table, verdict = _report(rows, doc_kb, disk)
    print("\n".join([*table, "", *verdict]))
    if args.record:
        _record(table, verdict)
    last = next(r for r in rows if r["backend"] == "sqlite" and r["size"] == max(sizes))
    return 0 if last["uuid"] <= 0.02 and last["launch"] <= 0.3 else 1


def _report(rows: list[dict], doc_kb: float, disk: dict) -> tuple[list[str], list[str]]:
    table = [
        "| documents | backend | query by uuid, median (ms) | collect query (s) | "
        "launch overhead (s) | insert (ms/doc) | child process (s) | child peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["size"], r["backend"])):
        table.append(
            f"| {r['size']} | {r['backend']} | {r['uuid'] * 1e3:.1f} | {r['collect']:.2f} | "
            f"{r['launch']:.3f} | {r['insert'] * 1e3:.1f} | {r['wall']:.1f} | {r['peak']:.0f} |"
        )
    by = {(r["backend"], r["size"]): r for r in rows}

    def growth(backend: str) -> str:
        got = sorted(r["size"] for r in rows if r["backend"] == backend)
        a, b = by[(backend, got[0])], by[(backend, got[-1])]
        return (
            f"{backend} {got[0]} → {got[-1]} documents: query by uuid "
            f"{a['uuid'] * 1e3:.1f} → {b['uuid'] * 1e3:.1f} ms, collect {a['collect']:.2f} → "
            f"{b['collect']:.2f} s, launch overhead {a['launch']:.3f} → {b['launch']:.3f} s"
        )

    big = max(r["size"] for r in rows if r["backend"] == "sqlite")
    new = by[("sqlite", big)]
    common = sorted(
        {r["size"] for r in rows if r["backend"] == "montydb"}
        & {r["size"] for r in rows if r["backend"] == "sqlite"}
    )
    verdict = [
        f"- task document {doc_kb:.0f} kB as JSON; on disk at the largest size: "
        + ", ".join(f"{b} {v:.0f} MB" for b, v in disk.items()),
        f"- growth: {growth('sqlite')}",
    ]
    if common:
        verdict.append(f"- growth: {growth('montydb')}")
        c = common[-1]
        old, cur = by[("montydb", c)], by[("sqlite", c)]
        verdict.append(
            f"- side by side at {c} documents: montydb / SQLiteStore = "
            f"{old['uuid'] / cur['uuid']:.0f}x (query by uuid), "
            f"{old['collect'] / cur['collect']:.0f}x (collect), "
            f"{old['launch'] / cur['launch']:.0f}x (launch overhead), "
            f"{old['insert'] / cur['insert']:.0f}x (update)"
        )
    uuid_ok = "met" if new["uuid"] <= 0.02 else "NOT met"
    verdict.append(
        f"- at {big} documents: query by uuid {new['uuid'] * 1e3:.1f} ms (max "
        f"{new['uuid_max'] * 1e3:.1f}; target <= 20: {uuid_ok}),"
        f" launch overhead {new['launch']:.3f} s (target <= 0.3: "
        f"{'met' if new['launch'] <= 0.3 else 'NOT met'}), collect query {new['collect']:.2f} s"
    )
    return table, verdict


def _record(table: list[str], verdict: list[str]) -> None:
    lines = [
        START,
        "## Embedded JobStore from 100 to 2,000 task documents: montydb vs SQLiteStore",
        "",
        f"Recorded {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `benchmarks/bench_store.py` "
        f"on {os.cpu_count()} cores ({cpu_name()}), Python {platform.python_version()}; load "
        f"average {os.getloadavg()[0]:.1f} at the end: the machine is shared and was busy, so "
        "compare the two backends of one size with each other.",
        bytecode_note() + ".",
        "Documents: the task document of an emulated 257-atom static (polaronflow's lean "
        "parse + summary) as jobflow stores a job, uuid/name/folder varied. Timed inside a "
        "fresh child process per backend and size (imports excluded; the launch overhead "
        "includes opening a new JobStore).",
        "",
        *table,
        "",
        *verdict,
        "",
        "Reproduce: `.venv/bin/python benchmarks/bench_store.py --record`.",
        END,
    ]
    record_section(START, END, "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
