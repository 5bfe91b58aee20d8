"""The embedded stores: ``SharedMontyStore`` and ``SQLiteStore`` shared by several processes."""

from __future__ import annotations

import datetime
import json
import multiprocessing
from pathlib import Path

import pytest
from maggma.core import StoreError

from polaronflow.workflows.runtime.montystore import SharedMontyStore, SQLiteStore, embedded_stores


def _store(path: Path) -> SharedMontyStore:
    return SharedMontyStore("outputs", database_path=str(path), database_name="db", key="uuid")


def _hammer(path: str, n: int, worker: int) -> None:
    for i in range(n):
        store = _store(Path(path))
        store.connect()
        store.update([{"uuid": f"{worker}-{i}", "value": i}])
        assert store.query_one({"uuid": f"{worker}-{i}"})["value"] == i
        store.close()


def test_connect_configures_once_and_never_rewrites(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.connect()
    ident = tmp_path / ".monty.storage"
    assert ident.read_text().strip() == "sqlite"
    stamp = ident.stat().st_mtime_ns
    again = _store(tmp_path)
    again.connect()
    again.update([{"uuid": "a", "value": 1}])
    assert ident.stat().st_mtime_ns == stamp  # maggma's MontyStore would rewrite it here
    third = _store(tmp_path)
    third.connect()
    assert third.query_one({"uuid": "a"})["value"] == 1


def test_processes_connecting_together_all_succeed(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), 15, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    store = _store(tmp_path)
    store.connect()
    assert store.count() == 60


# --- SQLiteStore: the embedded JobStore -------------------------------------------------


def _sqlite(path: Path, name: str = "outputs") -> SQLiteStore:
    return SQLiteStore(str(path / "js.sqlite"), collection_name=name, key="uuid")


def _sqlite_hammer(path: str, n: int, worker: int) -> None:
    for i in range(n):
        store = _sqlite(Path(path))
        store.connect()
        store.update([{"uuid": f"{worker}-{i}", "index": 1, "value": i}], key=["uuid", "index"])
        assert store.query_one({"uuid": f"{worker}-{i}"})["value"] == i
        store.close()


def test_sqlite_processes_connecting_together_all_succeed(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_sqlite_hammer, args=(str(tmp_path), 15, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    store = _sqlite(tmp_path)
    store.connect()
    assert store.count() == 60
    assert sorted(store.distinct("uuid")) == sorted(f"{w}-{i}" for w in range(4) for i in range(15))


def _docs() -> list[dict]:
    docs = []
    for i in range(12):
        doc = {
            "uuid": f"u{i % 5}",
            "index": i // 5 + 1,
            "name": f"job-{i % 4}",
            "completed_at": f"2026-11-{30 - i:02d}T10:00:00",
            "output": {"dir_name": f"/runs/{i}", "energy": -float(i)},
            "metadata": {"tag": "a" if i % 2 else "b"},
        }
        if i == 3:
            doc["output"]["dir_name"] = None  # present but None: $exists is still True
        if i == 4:
            del doc["output"]["dir_name"]
        if i == 7:
            doc["name"] = ["a", "list"]  # not a scalar: the row is handled in Python
        docs.append(doc)
    return docs


QUERIES = [
    ({"uuid": "u1"}, None, {"index": -1}, 0, 0),
    ({"uuid": {"$in": ["u1", "u3"]}, "index": 2}, ["output.energy"], None, 0, 0),
    (
        {"output.dir_name": {"$exists": True}},
        ["name", "output.dir_name", "completed_at"],
        None,
        0,
        0,
    ),
    ({"output.dir_name": {"$exists": False}}, ["uuid"], None, 0, 0),
    ({"output.dir_name": None}, ["uuid", "index"], None, 0, 0),
    ({"metadata.tag": "a", "index": {"$gte": 2}}, ["uuid", "index"], {"completed_at": 1}, 0, 0),
    ({}, ["uuid", "index"], {"completed_at": -1, "index": 1}, 2, 3),
    ({"name": "a"}, ["uuid"], None, 0, 0),
    ({"name": "job-1"}, {"output": 0}, {"uuid": 1, "index": -1}, 0, 0),
]


def test_sqlite_queries_answer_as_mongomock_does(tmp_path: Path) -> None:
    from maggma.stores import MemoryStore

    ours, ref = _sqlite(tmp_path), MemoryStore("ref", key="uuid")
    ours.connect()
    ref.connect()
    for store in (ours, ref):
        store.update(_docs(), key=["uuid", "index"])
        # replacing by key keeps one document per (uuid, index)
        store.update([{**_docs()[0], "name": "replaced"}], key=["uuid", "index"])

    def strip(docs):
        return [{k: v for k, v in d.items() if k != "_id"} for d in docs]

    for criteria, properties, sort, skip, limit in QUERIES:
        kwargs = {"properties": properties, "sort": sort, "skip": skip, "limit": limit}
        got = strip(ours.query(criteria, **kwargs))
        want = strip(ref.query(criteria, **kwargs))
        if sort is None:  # no order promised without a sort

            def key(d: dict) -> str:
                return json.dumps(d, sort_keys=True)

            got, want = sorted(got, key=key), sorted(want, key=key)
        assert got == want, (criteria, properties, sort)
        assert ours.count(criteria) == ref.count(criteria), criteria
    assert ours.query_one({"uuid": "u0", "index": 1})["name"] == "replaced"
    ours.remove_docs({"metadata.tag": "a"})
    ref.remove_docs({"metadata.tag": "a"})
    ours.remove_docs({"uuid": "u0"})
    ref.remove_docs({"uuid": "u0"})
    assert ours.count() == ref.count() == len(strip(ref.query({})))


def test_sqlite_keeps_dates_and_serves_jobflow(tmp_path: Path) -> None:
    from jobflow import JobStore

    docs, blobs = (
        _sqlite(tmp_path),
        SQLiteStore(str(tmp_path / "js.sqlite"), "blobs", key="blob_uuid"),
    )
    store = JobStore(docs, additional_stores={"data": blobs})
    store.connect()
    stamp = datetime.datetime(2026, 12, 1, 0, 30)
    for index in (1, 2):
        store.update({"uuid": "j", "index": index, "output": {"v": index}, "when": stamp})
    assert store.get_output("j") == {"v": 2}  # jobflow: the last index
    assert store.get_output("j", which=1) == {"v": 1}
    assert store.query_one({"uuid": "j"})["when"] == stamp
    again = JobStore.from_dict(store.as_dict())
    again.connect()
    assert again.count({"uuid": "j"}) == 2


def test_embedded_stores_copy_an_old_montydb_store_once(tmp_path: Path) -> None:
    old = SharedMontyStore(
        "outputs", database_path=str(tmp_path), database_name="polaronflow", key="uuid"
    )
    old.connect()
    old.update([{"uuid": f"u{i}", "index": 1, "output": {"i": i}} for i in range(5)])
    old.close()
    docs, blobs = embedded_stores(tmp_path)
    docs.connect()
    blobs.connect()
    assert docs.count() == 5 and blobs.count() == 0
    assert docs.query_one({"uuid": "u3"})["output"] == {"i": 3}
    docs.update({"uuid": "new", "index": 1})
    docs2, _ = embedded_stores(tmp_path)  # the SQLite file exists: no second copy
    docs2.connect()
    assert docs2.count() == 6


def _child_sees_no_open_file_and_writes(path: str, worker: int) -> None:
    import os

    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    assert not [f for f in fds if "js.sqlite" in f], fds  # nothing inherited from the parent
    store = _sqlite(Path(path))
    store.connect()
    for i in range(10):
        store.update({"uuid": f"child{worker}-{i}", "index": 1})


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
def test_sqlite_connections_never_cross_a_fork(tmp_path: Path) -> None:
    # `launch` forks its workers while its own JobStore may still be open (kept alive by a
    # reference cycle until the next garbage collection): SQLite then fails in the children.
    parent = _sqlite(tmp_path)
    parent.connect()
    parent.update({"uuid": "parent", "index": 1})
    twin = _sqlite(tmp_path)  # a second store of the same file (equal to the first)
    twin.connect()
    assert twin == parent and twin.count() == 1
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_child_sees_no_open_file_and_writes, args=(str(tmp_path), w))
        for w in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    # the parent's store reconnects by itself after the fork
    assert parent.count() == 21
    parent.close()
    with pytest.raises(StoreError):
        parent.count()
