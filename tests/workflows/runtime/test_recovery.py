"""``polaronflow rerun`` and ``polaronflow delete`` on the embedded store (the CLI as typed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from jobflow import Flow, job

from polaronflow.cli import main

pytestmark = pytest.mark.filterwarnings("ignore")


@job
def _fails_once(marker: str) -> int:
    if not Path(marker).exists():
        Path(marker).write_text("failed once")
        raise RuntimeError("first attempt fails")
    return 7


@job
def _fine() -> int:
    return 1


def _submit(project: Path, tmp_path: Path) -> None:
    from polaronflow.settings import load_settings
    from polaronflow.workflows.runtime.submit import submit_flow

    a, b = _fine(), _fails_once(str(tmp_path / "marker"))
    a.name, b.name = "fine", "flaky"
    submit_flow(Flow([a, b]), load_settings(project_dir=project))


def _states(project: Path) -> dict[str, str]:
    from polaronflow.workflows.runtime.submit import embedded_launchpad

    with embedded_launchpad(project, timeout=30) as lp:
        return {f["name"]: f["state"] for f in lp.fireworks.find({}, {"name": 1, "state": 1})}


def test_rerun_fizzled_then_launch_completes(tmp_path, capsys):
    project = tmp_path / "project"
    _submit(project, tmp_path)
    assert main(["launch", "--project-dir", str(project)]) == 1  # this launch's job FIZZLED
    assert _states(project) == {"fine": "COMPLETED", "flaky": "FIZZLED"}
    capsys.readouterr()
    assert main(["rerun", "--fizzled", "--project-dir", str(project)]) == 0
    assert "flaky" in capsys.readouterr().out
    assert _states(project)["flaky"] == "READY"
    assert main(["launch", "--project-dir", str(project)]) == 0
    assert _states(project) == {"fine": "COMPLETED", "flaky": "COMPLETED"}
    # a named job runs again too
    assert main(["rerun", "--job", "fine", "--project-dir", str(project)]) == 0
    assert _states(project)["fine"] == "READY"


def test_rerun_needs_a_choice_and_an_existing_project(tmp_path, capsys):
    project = tmp_path / "project"
    assert main(["rerun", "--fizzled", "--project-dir", str(tmp_path / "typo")]) == 2
    err = capsys.readouterr().err
    assert "no polaronflow project" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "typo").exists()
    _submit(project, tmp_path)
    assert main(["rerun", "--project-dir", str(project)]) == 2
    assert main(["rerun", "--job", "nope", "--project-dir", str(project)]) == 2
    assert "not a job" in capsys.readouterr().err


def test_delete_asks_and_removes_the_campaign_and_its_outputs(tmp_path, capsys):
    from polaronflow.workflows.runtime.submit import embedded_jobstore

    project = tmp_path / "project"
    _submit(project, tmp_path)
    main(["launch", "--project-dir", str(project)])
    store = embedded_jobstore(project)
    store.connect()
    assert store.count({}) == 1
    capsys.readouterr()
    # not a terminal and no --yes: refused, nothing deleted
    assert main(["delete", "--project-dir", str(project)]) == 2
    assert "--yes" in capsys.readouterr().err and _states(project)
    assert main(["delete", "--yes", "--project-dir", str(project)]) == 0
    assert "deleted campaign" in capsys.readouterr().out
    assert _states(project) == {}
    store.connect(force_reset=True)
    assert store.count({}) == 0


def test_broken_stores_are_one_line_errors(tmp_path, capsys):
    """A launchpad.json of the wrong shape and a corrupt embedded JobStore: exit 2, one line."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "launchpad.json").write_text('{"fireworks": 5}')
    assert main(["status", "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert "wrong shape" in err and len(err.strip().splitlines()) == 1
    (project / "launchpad.json").unlink()
    store = project / "jobstore" / "polaronflow"
    store.mkdir(parents=True)
    (store / "outputs.collection").write_bytes(b"\x00not sqlite" * 20)
    assert main(["collect", str(tmp_path / "runs"), "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("polaronflow: error:") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and not (tmp_path / "runs").exists()
