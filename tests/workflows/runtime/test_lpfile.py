"""The embedded LaunchPad's file codec: incremental saves write what bson.json_util would."""

from __future__ import annotations

import datetime as dt
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


def test_every_save_is_what_json_util_writes(tmp_path):
    """After each FireWorks operation the incremental save equals a full bson.json_util.dumps,
    and a fresh open reads back the same store."""
    import bson.json_util
    from fireworks import FWAction, FWorker

    from polaronflow.workflows.runtime.submit import embedded_launchpad

    project = tmp_path / "project"
    steps = []
    with embedded_launchpad(project, timeout=10) as lp:
        store = _store(lp)

        def save(what: str) -> None:
            lp.polaronflow_checkpoint()
            steps.append((what, _saved(project), bson.json_util.dumps(store.to_dict())))

        save("reset")
        for i in range(3):
            lp.add_wf(_workflow(f"wf{i}"))
        save("added")
        fw, launch_id = lp.checkout_fw(FWorker(name="w"), str(tmp_path))
        save("checkout")
        lp.complete_launch(launch_id, FWAction(stored_data={"x": [1, 2.5]}), "COMPLETED")
        save("complete")
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
        lp.db["extra"].insert_one({"n": 1})
        save("new collection")
        lp.db["extra"].replace_one({"n": 1}, {"n": 2})
        save("replace")
        final = store.to_dict()
    for what, text, full in steps:
        assert text == full, what
    with embedded_launchpad(project, timeout=10) as lp:
        assert _store(lp).to_dict() == final
        assert lp.workflows.find_one({"name": "wf1-again"}) is not None


def test_file_stays_readable_by_mongomock_persistence(tmp_path, monkeypatch):
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


def test_find_one_answers_as_mongomock(tmp_path):
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
