"""``launch_embedded`` / ``polaronflow launch``: N worker processes on the embedded LaunchPad."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from jobflow import Flow, job

from polaronflow.cli import main

pytestmark = pytest.mark.filterwarnings("ignore")


@job
def _add(a: int, b: int) -> int:
    return a + b


@job
def _slow_add(a: int, b: int) -> int:
    import time

    time.sleep(1.5)
    return a + b


@job
def _die_once(marker: str) -> int:
    if not Path(marker).exists():
        Path(marker).write_text("died once")
        os._exit(3)  # a worker killed mid-job (out of memory, node lost, ...)
    return 42


def test_two_workers_run_a_campaign_with_dynamic_jobs_once_each(tmp_path, mock_vasp):
    from polaronflow.emulator.fast import fast_parameters_file
    from polaronflow.settings import load_settings
    from polaronflow.workflows.runtime.launch import launch_embedded
    from polaronflow.workflows.runtime.submit import (
        embedded_jobstore,
        embedded_launchpad,
        submit_campaign,
    )

    project = tmp_path / "project"
    submit_campaign(
        settings=load_settings(project_dir=project),
        ions=["Mg"],
        schedule=(9, 5),
        supercell=(2, 1, 1),
        potcar_spec=True,
        parameters_file=fast_parameters_file(tmp_path / "fast.yaml"),
    )
    seen = []
    result = launch_embedded(
        project, workers=2, progress=lambda done, total, name: seen.append((done, total, name))
    )
    assert result.workers == 2
    assert result.counts() == {"COMPLETED": len(result.records)}
    names = [r.name for r in result.records]
    # the k-point loop added its statics while the campaign ran; nothing ran twice
    assert any(n.startswith("ref-MgO-kconv-k") for n in names)
    assert {"mg-static", "campaign-analysis"} <= set(names)
    assert {r.worker for r in result.records} == {"polaronflow-1", "polaronflow-2"}
    assert all(Path(r.launch_dir).parent == project / "launches" for r in result.records)
    # progress saw every job finish once, counting up
    assert [d for d, _, _ in seen] == list(range(1, len(result.records) + 1))
    # the LaunchPad was saved: a new process view agrees, one launch per Firework
    with embedded_launchpad(project, timeout=30) as lp:
        fws = list(lp.fireworks.find({}, {"state": 1, "launches": 1}))
        assert len(fws) == len(result.records)
        assert all(fw["state"] == "COMPLETED" and len(fw["launches"]) == 1 for fw in fws)
        assert lp.launches.count_documents({}) == len(fws)
    store = embedded_jobstore(project)
    store.connect()
    # one output per Firework (a replaced job keeps its uuid with the next index)
    keys = [(d["uuid"], d["index"]) for d in store.query({}, properties=["uuid", "index"])]
    assert len(keys) == len(set(keys)) == len(fws)


def test_a_dead_worker_is_reported_and_its_job_put_back_to_ready(tmp_path):
    from polaronflow.settings import load_settings
    from polaronflow.workflows.runtime.launch import LaunchError, launch_embedded
    from polaronflow.workflows.runtime.submit import embedded_launchpad, submit_flow

    project = tmp_path / "project"
    ok, dead = _add(1, 2), _die_once(str(tmp_path / "marker"))
    ok.name, dead.name = "ok", "dead"
    submit_flow(Flow([ok, dead]), load_settings(project_dir=project))
    with pytest.raises(LaunchError, match=r"exit code 3.*reset to READY"):
        launch_embedded(project, workers=2)

    def states() -> dict[str, str]:
        with embedded_launchpad(project, timeout=30) as lp:
            return {f["name"]: f["state"] for f in lp.fireworks.find({}, {"name": 1, "state": 1})}

    # the dead worker's job went back to READY (the surviving worker may have run it already)
    assert states()["ok"] == "COMPLETED" and states()["dead"] in ("READY", "COMPLETED")
    again = launch_embedded(project, workers=1)
    assert again.left_running == [] and again.rerun == []
    assert states() == {"ok": "COMPLETED", "dead": "COMPLETED"}
    with embedded_launchpad(project, timeout=30) as lp:
        fw = lp.fireworks.find_one({"name": "dead"})
        assert len(fw["launches"]) == 1 and len(fw["archived_launches"]) == 1


def test_an_interrupted_launch_saves_what_finished(tmp_path):
    from polaronflow.settings import load_settings
    from polaronflow.workflows.runtime.launch import LaunchError, launch_embedded
    from polaronflow.workflows.runtime.submit import embedded_launchpad, submit_flow

    project = tmp_path / "project"
    first = _add(1, 2)
    first.name = "first"
    submit_flow(Flow([first]), load_settings(project_dir=project))

    def ctrl_c(done: int, total: int, name: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(LaunchError, match="interrupted"):
        launch_embedded(project, workers=2, progress=ctrl_c)
    with embedded_launchpad(project, timeout=30) as lp:
        assert lp.fireworks.find_one({"name": "first"})["state"] == "COMPLETED"


@pytest.mark.parametrize("workers", [0, -1])
def test_bad_worker_count_is_one_line_exit_2(tmp_path, capsys, workers):
    code = main(["launch", "--project-dir", str(tmp_path / "p"), "--workers", str(workers)])
    err = capsys.readouterr().err
    assert code == 2
    assert "workers must be a whole number >= 1" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists()  # nothing created


def test_launch_refuses_a_mongodb_launchpad(tmp_path, capsys):
    (tmp_path / "lp.yaml").write_text("host: localhost\nname: fw\n")
    (tmp_path / "s.yaml").write_text(f"launchpad_file: {tmp_path / 'lp.yaml'}\n")
    code = main(["launch", "--config", str(tmp_path / "s.yaml")])
    assert code == 2
    assert "rlaunch" in capsys.readouterr().err


def test_launch_cli_runs_the_embedded_jobs(tmp_path, capsys):
    from polaronflow.settings import load_settings
    from polaronflow.workflows.runtime.submit import submit_flow

    project = tmp_path / "project"
    first = _add(1, 2)
    second = _add(first.output, 3)
    submit_flow(Flow([first, second]), load_settings(project_dir=project))
    code = main(["launch", "--project-dir", str(project), "--workers", "2", "--json"])
    assert code == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert [r["state"] for r in out["records"]] == ["COMPLETED", "COMPLETED"]
    assert out["workers"] == 2


def test_status_reads_the_progress_while_a_launch_holds_the_lock(tmp_path):
    from polaronflow.settings import load_settings
    from polaronflow.workflows.runtime.launch import launch_embedded
    from polaronflow.workflows.runtime.status import campaign_status
    from polaronflow.workflows.runtime.submit import submit_flow

    project = tmp_path / "project"
    settings = load_settings(project_dir=project, lock_timeout=1)
    first = _add(1, 2)
    second = _slow_add(first.output, 3)
    first.name, second.name = "first", "second"
    submit_flow(Flow([first, second]), settings)
    seen: list[dict[str, str]] = []

    def look(done: int, total: int, name: str) -> None:
        # the launch holds the project's lock now; status reads the last save without it
        status = campaign_status(settings)
        seen.append({fw.name: fw.state for wf in status.workflows for fw in wf.fireworks})

    launch_embedded(project, workers=1, progress=look)
    assert seen[0]["first"] == "COMPLETED" and seen[0]["second"] in ("READY", "RUNNING")
    assert seen[-1] == {"first": "COMPLETED", "second": "COMPLETED"}
