"""collect: a JobStore's finished runs as RUNS/<job name> links (latest run of each job)."""

from __future__ import annotations

import pytest
from jobflow import JobStore
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
    assert run_folders(store) == {"mg-static": f"node02:{new}", "ref-MgO-kconv-k7x7x7": str(ref)}
    linked = collect_runs(store, tmp_path / "runs")
    assert linked == {"mg-static": new, "ref-MgO-kconv-k7x7x7": ref}
    assert (tmp_path / "runs" / "mg-static").resolve() == new


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
