"""The embedded LaunchPad's file codec: incremental saves write what bson.json_util would."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore")


def _saved(project: Path) -> str:
    return (project / "launchpad.json").read_text(encoding="utf-8")


def _store(lp):
    return lp.fireworks.database.client._store


def _workflow(name: str):
    from fireworks import Firework, ScriptTask, Workflow

    a = Firework(ScriptTask.from_str("true"), name=f"{name}-a", fw_id=-1)
    b = Firework(ScriptTask.from_str("true"), name=f"{name}-b", fw_id=-2, parents=[a])
    c = Firework(ScriptTask.from_str("true"), name=f"{name}-c", fw_id=-3, parents=[a])
    return Workflow([a, b, c], name=name, metadata={"when": dt.datetime(2026, 1, 2, 3, 4, 5)})


def test_every_save_reads_back_and_a_closed_store_is_what_json_util_writes(tmp_path):
    """After each FireWorks operation the saved state (snapshot + journal) reads back as the
    store; later saves only append to the journal; the closed file is bson.json_util's."""
    import bson.json_util
    from fireworks import FWAction, FWorker

    from polaronflow.workflows.runtime.lpfile import read_state
    from polaronflow.workflows.runtime.submit import embedded_launchpad

    project = tmp_path / "project"
    db_file, journal = project / "launchpad.json", project / "launchpad.journal"
    steps = []
    with embedded_launchpad(project, timeout=10) as lp:
        store = _store(lp)

        def save(what: str) -> None:
            lp.polaronflow_checkpoint()
            live = bson.json_util.loads(bson.json_util.dumps(store.to_dict()))  # lists, not tuples
            steps.append((what, read_state(db_file), live, journal.stat().st_size))

        save("reset")
        for i in range(3):
            lp.add_wf(_workflow(f"wf{i}"))
        save("added")
        snapshot = db_file.read_bytes()
        fw, launch_id = lp.checkout_fw(FWorker(name="w"), str(tmp_path))
        save("checkout")
        lp.complete_launch(launch_id, FWAction(stored_data={"x": [1, 2.5]}), "COMPLETED")
        save("complete")
        assert db_file.read_bytes() == snapshot  # appended to the journal only
        lp.rerun_fw(fw.fw_id)
        save("rerun")
        lp.fireworks.update_many({"name": {"$regex": "-b$"}}, {"$set": {"spec._priority": 3}})
        save("update_many")
        doc = lp.workflows.find_one({"name": "wf1"})
        lp.workflows.delete_one({"_id": doc["_id"]})
        save("delete")
        lp.workflows.insert_one({**doc, "name": "wf1-again"})  # the same _id again
        save("reinsert")
        doc = lp.workflows.find_one({"name": "wf0"})  # deleted and back between two saves
        lp.workflows.delete_one({"_id": doc["_id"]})
        lp.workflows.insert_one({**doc, "name": "wf0-again"})
        save("delete and reinsert")
        lp.delete_wf(lp.get_fw_ids({"name": "wf2-a"})[0])
        save("delete_wf")
        lp.db["extra"].insert_one({"n": 1})
        save("new collection")
        lp.db["extra"].replace_one({"n": 1}, {"n": 2})
        save("replace")
        final = store.to_dict()
    for what, saved, live, _ in steps:
        assert saved == live, what
        # the same documents in the same (natural) order
        for db, colls in live.items():
            for name, coll in colls.items():
                ids = [i for i, _ in saved[db][name]["documents"]]
                assert ids == [i for i, _ in coll["documents"]], (what, name)
    assert steps[2][3] > steps[1][3]  # the journal grew
    assert not journal.exists()
    assert db_file.read_text() == bson.json_util.dumps(final)
    with embedded_launchpad(project, timeout=10) as lp:
        assert _store(lp).to_dict() == final
        assert lp.workflows.find_one({"name": "wf1-again"}) is not None


def test_a_torn_or_foreign_journal_is_not_applied(tmp_path):
    """kill -9 during an append leaves a torn last line: the saves before it are read, the
    torn one is not. A journal that names another snapshot is ignored."""
    from polaronflow.workflows.runtime.lpfile import read_state
    from polaronflow.workflows.runtime.status import embedded_status
    from polaronflow.workflows.runtime.submit import embedded_launchpad

    project = tmp_path / "project"
    db_file, journal = project / "launchpad.json", project / "launchpad.journal"
    with embedded_launchpad(project, timeout=10) as lp:
        lp.polaronflow_checkpoint()
        lp.add_wf(_workflow("wf0"))
        lp.polaronflow_checkpoint()
        whole = read_state(db_file)
        lp.add_wf(_workflow("wf1"))
        lp.polaronflow_checkpoint()
        lines = journal.read_bytes().split(b"\n")
        # as if killed in the middle of writing the last save
        journal.write_bytes(b"\n".join(lines[:-2]) + b"\n" + lines[-2][: len(lines[-2]) // 2])
        assert read_state(db_file) == whole
        assert [w.name for w in embedded_status(project).workflows] == ["wf0"]
        head = journal.read_bytes().split(b"\n", 1)
        journal.write_bytes(b'{"snapshot": "another"}\n' + head[1])
        assert [w.name for w in embedded_status(project).workflows] == []
    # closing the block wrote the live store (both workflows) as one file
    assert not journal.exists()
    assert [w.name for w in embedded_status(project).workflows] == ["wf0", "wf1"]


def test_file_stays_readable_by_the_persistence_package(tmp_path, monkeypatch):
    import mongomock_persistence

    from polaronflow.workflows.runtime.submit import embedded_launchpad

    project = tmp_path / "project"
    with embedded_launchpad(project, timeout=10) as lp:
        lp.add_wf(_workflow("wf"))
        expected = _store(lp).to_dict()
    monkeypatch.setenv("MONGOMOCK_SERVERSTORE_FILE", str(project / "launchpad.json"))
    theirs = mongomock_persistence.ServerStore(str(project / "launchpad.json"))
    theirs._finalizer.detach()
    assert theirs.to_dict() == expected


def test_nan_and_infinity_survive(tmp_path):
    from polaronflow.workflows.runtime.submit import embedded_launchpad

    project = tmp_path / "project"
    with embedded_launchpad(project, timeout=10) as lp:
        lp.db["extra"].insert_one({"a": float("nan"), "b": [float("inf"), -float("inf")]})
    with embedded_launchpad(project, timeout=10, read_only=True) as lp:
        doc = lp.db["extra"].find_one({})
    assert math.isnan(doc["a"]) and doc["b"] == [float("inf"), -float("inf")]


def test_find_one_answers_as_the_cursor_does(tmp_path):
    """The first-match-only find_one gives mongomock's answer (filter, sort, projection, skip)
    and a copy, not the stored document."""
    import mongomock

    from polaronflow.workflows.runtime.submit import embedded_launchpad

    docs = [{"k": i % 4, "v": i, "sub": {"x": [i]}} for i in range(20)]
    plain = mongomock.MongoClient().db.c
    plain.insert_many([dict(d) for d in docs])
    project = tmp_path / "project"
    with embedded_launchpad(project, timeout=10) as lp:
        ours = lp.db["c"]
        ours.insert_many([dict(d) for d in docs])
        lp.polaronflow_checkpoint()  # from now on the collection is an incremental one
        queries = [
            ({}, {}),
            ({"k": 2}, {}),
            ({"k": 2}, {"sort": [("v", -1)]}),
            ({"k": {"$in": [1, 3]}}, {"projection": {"v": 1, "_id": 0}, "sort": [("v", 1)]}),
            ({"k": 1}, {"skip": 2}),
            ({"k": 9}, {}),
        ]
        for filt, kwargs in queries:
            a, b = ours.find_one(filt, **kwargs), plain.find_one(filt, **kwargs)
            if a is not None:
                a.pop("_id", None), b.pop("_id", None)
            assert a == b, (filt, kwargs)
        got = ours.find_one({"v": 5})
        got["sub"]["x"].append(99)
        assert ours.find_one({"v": 5})["sub"]["x"] == [5]


def test_wrong_shape_and_bad_json_are_one_line_errors(tmp_path):
    from polaronflow.errors import ConfigError
    from polaronflow.workflows.runtime.submit import embedded_launchpad

    project = tmp_path / "project"
    project.mkdir()
    for text, words in (('{"fireworks": 5}', "wrong shape"), ("{not json", "cannot be read")):
        (project / "launchpad.json").write_text(text)
        with pytest.raises(ConfigError, match=words):
            with embedded_launchpad(project, timeout=10):
                pass
        assert (project / "launchpad.json").read_text() == text
    assert not [p for p in os.listdir(project) if p.startswith(".launchpad.json.")]


def test_status_from_the_file_is_the_launchpads(tmp_path):
    """``polaronflow status`` reads the embedded file without FireWorks: the same answer as
    the LaunchPad queries, with launches, a failure and an archived launch."""
    from fireworks import FWAction, FWorker

    from polaronflow.workflows.runtime.status import embedded_status, launchpad_status
    from polaronflow.workflows.runtime.submit import embedded_launchpad

    project = tmp_path / "project"
    with embedded_launchpad(project, timeout=10) as lp:
        for i in range(3):
            lp.add_wf(_workflow(f"wf{i}"))
        for state in ("COMPLETED", "FIZZLED", "COMPLETED"):
            fw, launch_id = lp.checkout_fw(FWorker(name="w"), str(tmp_path))
            action = FWAction(stored_data={"_exception": {"_stacktrace": "Trace\nValueError: x"}})
            lp.complete_launch(launch_id, action if state == "FIZZLED" else FWAction(), state)
        lp.rerun_fw(fw.fw_id)
        lp.archive_wf(lp.get_fw_ids({"name": "wf2-a"})[0])
    with embedded_launchpad(project, timeout=10, read_only=True) as lp:
        theirs = launchpad_status(lp, "here")
    ours = embedded_status(project, "here")
    assert ours == theirs
    states = {fw.state for wf in ours.workflows for fw in wf.fireworks}
    assert {"COMPLETED", "FIZZLED", "READY", "ARCHIVED"} <= states
    assert any(fw.failure == "ValueError: x" for wf in ours.workflows for fw in wf.fireworks)
    assert embedded_status(tmp_path / "nothing", "x").workflows == []


def test_a_failed_append_is_cut_back(tmp_path, monkeypatch):
    """A save that fails half-way (a full disk) leaves no partial line in front of the next."""
    import os as os_module

    from polaronflow.workflows.runtime.lpfile import read_state
    from polaronflow.workflows.runtime.submit import embedded_launchpad

    project = tmp_path / "project"
    db_file = project / "launchpad.json"
    with embedded_launchpad(project, timeout=10) as lp:
        lp.polaronflow_checkpoint()
        lp.add_wf(_workflow("wf0"))
        real_write = os_module.write

        def half_then_full(fd, data):
            real_write(fd, bytes(data)[: len(data) // 2])
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os_module, "write", half_then_full)
        with pytest.raises(OSError):
            lp.polaronflow_checkpoint()
        monkeypatch.setattr(os_module, "write", real_write)
        lp.add_wf(_workflow("wf1"))
        lp.polaronflow_checkpoint()  # the failed save's documents are still unsaved: saved now
        lines = (project / "launchpad.journal").read_bytes().split(b"\n")
        assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])
        saved = read_state(db_file)["fireworks"]["workflows"]["documents"]
        assert {doc["name"] for _, doc in saved} == {"wf0", "wf1"}


def test_id_lookups_answer_as_scans_do(tmp_path):
    """{"fw_id": n}, {"launch_id": n} and {"_id": ObjectId} on the embedded store come from an
    index or the key; after inserts, in-place updates, replacements, deletions, a drop and
    values an index cannot answer for, every answer is mongomock's scan's."""
    import random

    import mongomock

    from polaronflow.workflows.runtime.submit import embedded_launchpad

    rng = random.Random(7)
    plain = mongomock.MongoClient().db.c
    project = tmp_path / "project"
    with embedded_launchpad(project, timeout=10) as lp:
        ours = lp.db["c"]
        ours.insert_one({"fw_id": 0})
        lp.polaronflow_checkpoint()  # an incremental collection from now on
        plain.insert_one({"fw_id": 0})

        def same(step: str) -> None:
            for n in range(-1, 25):
                for field in ("fw_id", "launch_id"):
                    a = [{k: v for k, v in d.items() if k != "_id"} for d in ours.find({field: n})]
                    b = [{k: v for k, v in d.items() if k != "_id"} for d in plain.find({field: n})]
                    assert a == b, (step, field, n)
                    one = ours.find_one({field: n})
                    assert (one is None) == (not b), (step, field, n)
            for doc in ours.find({}):
                assert ours.find_one({"_id": doc["_id"]}) == doc

        for i in range(1, 20):
            for coll in (ours, plain):
                coll.insert_one({"fw_id": i, "launch_id": 100 + i, "i": i})
        same("inserted")
        ours.find_one({"fw_id": 3}), ours.find_one({"launch_id": 103})  # builds the indexes
        for step in range(60):
            n, m = rng.randrange(20), rng.randrange(25)
            op = rng.choice(["set", "inc", "replace", "delete", "insert", "many"])
            for coll in (ours, plain):
                if op == "set":
                    coll.update_one({"i": n}, {"$set": {"fw_id": m}})
                elif op == "inc":
                    coll.find_one_and_update({"fw_id": n}, {"$inc": {"fw_id": 1}})
                elif op == "replace":
                    coll.replace_one({"i": n}, {"i": n, "fw_id": m, "launch_id": m})
                elif op == "delete":
                    coll.delete_one({"fw_id": n})
                elif op == "insert":
                    coll.insert_one({"i": 100 + step, "fw_id": m})
                else:
                    coll.update_many({"fw_id": {"$gt": m}}, {"$inc": {"launch_id": 2}})
            same(f"{step}: {op}")
            if step % 20 == 19:
                lp.polaronflow_checkpoint()
        for coll in (ours, plain):  # a value an int index cannot answer for: a list
            coll.update_one({"i": 5}, {"$set": {"fw_id": [7, 8]}})
        same("list value")
        for coll in (ours, plain):
            coll.drop()
            coll.insert_many([{"fw_id": 1, "launch_id": 1}, {"fw_id": 2}])
        same("dropped")
