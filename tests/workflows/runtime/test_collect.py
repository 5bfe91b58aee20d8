"""collect: a JobStore's finished runs as RUNS/<job name> links (latest run of each job)."""

from __future__ import annotations

import os

import pytest
from jobflow import JobStore, job
from maggma.stores import MemoryStore

from polaronflow.cli import main
from polaronflow.errors import InputError
from polaronflow.workflows.campaign.analysis_job import local_path
from polaronflow.workflows.runtime.collect import collect_runs, run_folders


def _store(docs):
    store = JobStore(MemoryStore())
    store.connect()
    store.docs_store.update(docs, key=["uuid", "index"])
    return store


def _doc(uuid, name, dir_name, when, index=1):
    return {
        "uuid": uuid,
        "index": index,
        "name": name,
        "completed_at": when,
        "output": {"dir_name": dir_name},
    }


def test_latest_run_of_each_job_is_linked(tmp_path):
    old, new, ref = (tmp_path / d for d in ("old", "new", "ref"))
    for d in (old, new, ref):
        d.mkdir()
    store = _store(
        [
            _doc("a", "mg-static", f"node01:{old}", "2026-01-01T00:00:00"),
            _doc("b", "mg-static", f"node02:{new}", "2026-01-02T00:00:00"),  # rerun, later
            _doc("c", "ref-MgO-kconv-k7x7x7", str(ref), "2026-01-01T00:00:00"),
            {"uuid": "d", "index": 1, "name": "mg-seed", "output": {"structure": {}}},  # no run
        ]
    )
    uuids = ["a", "b", "c", "d"]  # one campaign's jobs (read from the LaunchPad by the CLI)
    want = {"mg-static": f"node02:{new}", "ref-MgO-kconv-k7x7x7": str(ref)}
    assert run_folders(store, uuids) == want
    linked = collect_runs(store, tmp_path / "runs", uuids=uuids)
    assert linked == {"mg-static": new, "ref-MgO-kconv-k7x7x7": ref}
    assert (tmp_path / "runs" / "mg-static").resolve() == new
    # relative links: the runs and their RUNS folder can move together
    assert not os.readlink(tmp_path / "runs" / "mg-static").startswith("/")
    # without the campaign's jobs, two 'mg-static' jobs are a mix of campaigns: refused
    with pytest.raises(InputError, match="more than one campaign"):
        run_folders(store)


@pytest.mark.parametrize("name", ["../../x", "/abs/path", "..", ".hidden", "a/b"])
def test_unsafe_job_names_are_refused_and_nothing_is_written(tmp_path, name):
    run = tmp_path / "run"
    run.mkdir()
    store = _store([_doc("a", name, str(run), "2026")])
    with pytest.raises(InputError, match="unsafe job name"):
        collect_runs(store, tmp_path / "runs")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "x").exists()


def test_empty_store_and_foreign_folders_are_refused(tmp_path):
    with pytest.raises(InputError, match="no finished VASP runs"):
        collect_runs(_store([]), tmp_path / "runs")
    store = _store([_doc("a", "mg-static", "cluster:/scratch/nowhere", "2026")])
    with pytest.raises(InputError, match="exist on this machine"):
        collect_runs(store, tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("text", "path"), [("host:/a/b", "/a/b"), ("/a/b", "/a/b"), ("", None), (None, None)]
)
def test_dir_name_to_local_path(text, path):
    result = local_path(text)
    assert (str(result) if result else None) == path


def test_cli_without_a_submitted_project(tmp_path, capsys):
    assert main(["collect", str(tmp_path / "runs"), "--project-dir", str(tmp_path / "p")]) == 2
    assert "no embedded JobStore" in capsys.readouterr().err
    assert not (tmp_path / "p").exists() and not (tmp_path / "runs").exists()


@job
def _fake_run(folder: str) -> dict:
    return {"dir_name": folder}


def test_two_campaigns_in_one_project_are_never_mixed(tmp_path, capsys):
    import json

    from jobflow import Flow

    from polaronflow.settings import load_settings
    from polaronflow.workflows.runtime.launch import launch_embedded
    from polaronflow.workflows.runtime.submit import submit_flow

    project = tmp_path / "project"
    folders = {}
    for cid in ("a" * 64, "b" * 64):
        folders[cid] = tmp_path / f"run-{cid[0]}"
        folders[cid].mkdir()
        j = _fake_run(str(folders[cid]))
        j.name = "mg-static"
        res = submit_flow(Flow([j]), load_settings(project_dir=project), campaign_id=cid)
        assert res.workflow_name.endswith(cid[:8])  # distinct names
    launch_embedded(project)
    capsys.readouterr()
    assert main(["collect", str(tmp_path / "latest"), "--project-dir", str(project)]) == 0
    assert "the latest of 2" in capsys.readouterr().err
    assert (tmp_path / "latest" / "mg-static").resolve() == folders["b" * 64]
    args = ["collect", str(tmp_path / "first"), "--project-dir", str(project), "--campaign", "aaaa"]
    assert main(args) == 0
    assert (tmp_path / "first" / "mg-static").resolve() == folders["a" * 64]
    capsys.readouterr()
    assert main(["status", "--json", "--project-dir", str(project)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert [w["campaign_id"] for w in status["workflows"]] == ["b" * 64]
    assert len(status["other_campaigns"]) == 1 and status["other_campaigns"][0].startswith("aaaa")
