"""``polaronflow status``: states, failure reasons and custodian corrections; no credentials."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore")

PASSWORD = "Pf-St4tus-S3cret"
USER = "pfstatususer"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POLARONFLOW_", "MONGOMOCK_", "FW_", "JOBFLOW_"))
    }
    env["HOME"] = str(tmp_path)
    return env


def _cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "polaronflow", *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.fixture
def ran_with_faults(tmp_path, mock_vasp, monkeypatch):
    """A campaign on the embedded LaunchPad run by FireWorks' rapidfire, with two VASP faults.

    ``wo3-unit-relax`` hits ZBRENT (custodian corrects it); ``wo3-supercell-relax`` writes a
    truncated vasprun.xml (custodian's validator fails it), so its branch stops.
    """
    from fireworks.core.fworker import FWorker
    from fireworks.core.rocket_launcher import rapidfire

    from polaronflow.emulator.fast import fast_parameters_file
    from polaronflow.settings import load_settings
    from polaronflow.workflows.runtime.submit import embedded_launchpad, submit_campaign

    mock_vasp.mode = "custodian"
    mock_vasp.fault("wo3-unit-relax", "zbrent")
    mock_vasp.fault("wo3-supercell-relax", "truncated")
    monkeypatch.setenv("HOME", str(tmp_path))
    project = tmp_path / "project"
    res = submit_campaign(
        settings=load_settings(project_dir=project),
        ions=["Mg"],
        references=False,
        schedule=(9, 5),
        supercell=(2, 1, 1),
        potcar_spec=True,
        parameters_file=fast_parameters_file(tmp_path / "fast.yaml"),
    )
    runs = tmp_path / "runs"
    runs.mkdir()
    with embedded_launchpad(project, timeout=30) as lp:
        rapidfire(lp, FWorker(), m_dir=str(runs), nlaunches=0, sleep_time=0, max_loops=1)
    return project, res


def test_status_reports_states_failure_and_custodian_corrections(ran_with_faults, tmp_path):
    project, res = ran_with_faults
    r = _cli("status", "--json", "--project-dir", str(project), tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    assert status["launchpad"] == str(project / "launchpad.json")
    (wf,) = status["workflows"]
    assert wf["campaign_id"] == res.campaign_id
    fws = {fw["name"]: fw for fw in wf["fireworks"]}
    ids = {fw["fw_id"] for fw in wf["fireworks"]}
    assert set(res.fw_ids) <= ids
    # the unit cell's volume loop adds its restart at run time (a relaxation, a check and
    # jobflow's store_inputs): nothing else is added
    extra = {fw["name"] for fw in wf["fireworks"] if fw["fw_id"] not in res.fw_ids}
    assert extra <= {"wo3-unit-relax-2", "wo3-unit-relax-check", "store_inputs"}, extra
    # jobflow's store_inputs job stands for the check that replaced itself with the restart
    stores = [fw for fw in wf["fireworks"] if fw["name"] == "store_inputs"]
    assert stores and {fw["stores_output_of"] for fw in stores} == {"wo3-unit-relax-check"}
    assert all(fw["stores_output_of"] is None for fw in wf["fireworks"] if fw not in stores)
    # corrected: completed, with the handler and what it did
    unit = fws["wo3-unit-relax"]
    assert unit["state"] == "COMPLETED" and unit["failure"] is None
    assert Path(unit["launch_dir"]).is_dir()
    (corr,) = unit["corrections"]
    assert corr["handler"] == "VaspErrorHandler" and "zbrent" in corr["errors"]
    assert any("POSCAR" in action for action in corr["actions"])
    # unfixable: failed with custodian's reason; its children never ran
    bad = fws["wo3-supercell-relax"]
    assert bad["state"] == "FIZZLED" and bad["n_launches"] == 1
    assert "ValidationError" in bad["failure"] and "VasprunXMLValidator" in bad["failure"]
    assert fws["wo3-supercell-static"]["state"] == "WAITING"
    assert fws["wo3-supercell-static"]["launch_dir"] is None
    assert wf["counts"]["FIZZLED"] == 1 and sum(wf["counts"].values()) == len(ids)
    # the table shows the same facts
    r = _cli("status", "--project-dir", str(project), tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    flat = " ".join(r.stdout.split())
    for text in ("FIZZLED", "VasprunXMLValidator", "VaspErrorHandler", "wo3-unit-relax"):
        assert text in flat
    assert "store_inputs (output of" in r.stdout  # the job column wraps after "of"


def test_status_of_empty_project(tmp_path):
    r = _cli("status", "--json", "--project-dir", str(tmp_path / "p"), tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["workflows"] == []
    r = _cli("status", "--project-dir", str(tmp_path / "p"), tmp_path=tmp_path)
    assert r.returncode == 0 and "no workflows" in r.stdout


def _no_secret(text: str) -> None:
    assert PASSWORD not in text and USER not in text


@pytest.mark.parametrize(
    "content",
    [
        # a server that is not there, with credentials
        f"host: 127.0.0.1\nport: {{port}}\nname: fw\nusername: {USER}\npassword: {PASSWORD}\n"
        "mongoclient_kwargs: {{serverSelectionTimeoutMS: 1500}}\n",
        # credentials in a URI
        f"host: mongodb://{USER}:{PASSWORD}@127.0.0.1:{{port}}/fw\nname: fw\n"
        "mongoclient_kwargs: {{serverSelectionTimeoutMS: 1500}}\n",
        # broken YAML on the password line (yaml quotes the line in its error)
        f"host: 127.0.0.1\nusername: {USER}\npassword: [{PASSWORD}\n",
        # a value of the wrong type next to the password
        f"host: 127.0.0.1\nport: not-a-port\npassword: {PASSWORD}\nusername: {USER}\n",
    ],
    ids=["unreachable", "uri", "bad-yaml", "bad-port"],
)
def test_bad_launchpad_file_one_line_exit_2_no_credentials(tmp_path, content):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    lp_file = tmp_path / "my_launchpad.yaml"
    lp_file.write_text(content.format(port=port))
    r = _cli("status", "--launchpad", str(lp_file), tmp_path=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("polaronflow: error: ")
    assert "Traceback" not in r.stderr
    _no_secret(r.stdout + r.stderr)
    # nor in any file the command left behind (logs, stores)
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != lp_file:
            _no_secret(path.read_bytes().decode("utf-8", errors="replace"))
