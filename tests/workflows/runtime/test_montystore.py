"""``SharedMontyStore``: one montydb folder opened by several processes at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from polaronflow.workflows.runtime.montystore import SharedMontyStore


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
