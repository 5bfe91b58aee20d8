"""Submission to the embedded LaunchPad (concurrency, persistence), MongoDB, and ``init``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def _env(tmp_path: Path) -> dict[str, str]:
    # a private HOME: no ~/.polaronflow.yaml, ~/.fireworks or ~/.jobflow.yaml of the user
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POLARONFLOW_", "MONGOMOCK_", "FW_", "JOBFLOW_"))
    }
    env["HOME"] = str(tmp_path)
    return env


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "polaronflow", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _small_flow(name: str):
    from polaronflow.workflows.campaign.maker import build_campaign

    flow = build_campaign(ions=["Mg"], references=False, schedule=(9, 5), analysis=False)
    flow.name = name
    return flow


def test_two_concurrent_cli_submits_keep_both_workflows(tmp_path):
    project = tmp_path / "project"
    env = _env(tmp_path)
    # settings file with a project folder; the CLI must not need anything else
    (tmp_path / "settings.yaml").write_text(f"project_dir: {project}\n")
    env["POLARONFLOW_CONFIG_FILE"] = str(tmp_path / "settings.yaml")
    common = ["submit", "--potcar-spec", "--ion", "Mg", "--no-references", "--schedule", "9,5"]
    common.append("--force")
    procs = [_cli(*common, env=env, cwd=tmp_path) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "submitted workflow" in out
    from polaronflow.workflows.runtime.submit import embedded_launchpad

    with embedded_launchpad(project, timeout=30) as lp:
        wf_ids = lp.get_wf_ids()
        assert len(wf_ids) == 2
        n_fws = [len(lp.get_wf_by_fw_id(i).fws) for i in wf_ids]
        # 4 pristine/supercell jobs + the unit cell's volume check + seed + 2 ramp steps + static
        # + the analysis job
        assert n_fws == [10, 10]
        names = {fw["name"] for fw in lp.fireworks.find({}, {"name": 1})}
        assert {"wo3-unit-relax", "mg-ramp-u9", "mg-ramp-u5", "mg-static"} <= names
        ids = sorted(fw["fw_id"] for fw in lp.fireworks.find({}, {"fw_id": 1}))
        assert ids == list(range(1, 21))  # no id handed out twice


def test_embedded_store_survives_processes_and_failed_blocks(tmp_path):
    from polaronflow.settings import load_settings
    from polaronflow.workflows.runtime.submit import embedded_launchpad, submit_flow

    settings = load_settings(project_dir=tmp_path / "p")
    res = submit_flow(_small_flow("first"), settings)
    # 8 jobs + the unit cell's volume check (wo3-unit-relax-check)
    assert res.n_jobs == 9 and res.fw_ids == list(range(1, 10))
    assert Path(res.launchpad).is_file()
    # an exception inside the block leaves the file as it was
    before = Path(res.launchpad).read_text()
    with pytest.raises(RuntimeError), embedded_launchpad(tmp_path / "p", timeout=5) as lp:
        lp.workflows.delete_many({})
        raise RuntimeError("boom")
    assert Path(res.launchpad).read_text() == before
    res2 = submit_flow(_small_flow("second"), settings)
    assert res2.fw_ids == list(range(10, 19))
    # another process sees both
    code = (
        "from polaronflow.workflows.runtime.submit import embedded_launchpad\n"
        f"with embedded_launchpad({str(tmp_path / 'p')!r}, timeout=30) as lp:\n"
        "    print(sorted(lp.get_wf_summary_dict(i)['name'] for i in lp.get_wf_ids()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(tmp_path), check=True
    ).stdout
    assert out.strip() == "['first', 'second']"


def test_unreadable_launchpad_files_exit_2(tmp_path):
    env = _env(tmp_path)
    bad = tmp_path / "my_launchpad.yaml"
    bad.write_text("host: [unclosed\n")
    p = _cli(
        "submit", "--ion", "Mg", "--no-references", "--launchpad", str(bad), env=env, cwd=tmp_path
    )
    _out, err = p.communicate(timeout=240)
    assert p.returncode == 2
    assert err.count("\n") == 1 and "LaunchPad file" in err and str(bad) in err
    # a corrupt embedded store is reported, not overwritten
    project = tmp_path / "proj"
    project.mkdir()
    (project / "launchpad.json").write_text("{not json")
    from polaronflow.errors import ConfigError
    from polaronflow.workflows.runtime.submit import embedded_launchpad

    with pytest.raises(ConfigError, match="cannot be read"), embedded_launchpad(project, 5):
        pass
    assert (project / "launchpad.json").read_text() == "{not json"


def test_lock_timeout_is_config_error(tmp_path):
    from filelock import FileLock

    from polaronflow.workflows.runtime.submit import embedded_launchpad

    tmp_path.joinpath("p").mkdir()
    with FileLock(str(tmp_path / "p" / "launchpad.lock")):
        code = (
            "from polaronflow.workflows.runtime.submit import embedded_launchpad\n"
            f"with embedded_launchpad({str(tmp_path / 'p')!r}, timeout=0.5): pass\n"
        )
        r = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=_env(tmp_path)
        )
        assert r.returncode != 0 and "ConfigError" in r.stderr and "locked" in r.stderr
    # released: the store opens again
    with embedded_launchpad(tmp_path / "p", timeout=5) as lp:
        assert lp.get_wf_ids() == []


def test_init_writes_templates_fireworks_and_jobflow_load(tmp_path):
    import stat

    env = _env(tmp_path)
    for flavour, extra in (("embedded", []), ("mongodb", ["--mongodb", "--queue", "pbs"])):
        out = tmp_path / flavour
        p = _cli(
            "init",
            "--out",
            str(out),
            "--project-dir",
            str(tmp_path / "proj"),
            *extra,
            env=env,
            cwd=tmp_path,
        )
        stdout, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        exported = [line for line in stdout.splitlines() if line.startswith("export ")]
        names = {line.split()[1].split("=")[0] for line in exported}
        mongodb = flavour == "mongodb"
        assert names == {
            "POLARONFLOW_CONFIG_FILE",
            "ATOMATE2_CONFIG_FILE",
            "JOBFLOW_CONFIG_FILE",
        } | ({"FW_CONFIG_FILE"} if mongodb else set())
        # no FireWorks configuration for the embedded store (FireWorks would overwrite it)
        assert (out / "FW_config.yaml").exists() == mongodb
        assert (out / "my_launchpad.yaml").exists() == mongodb
        # FireWorks and jobflow/atomate2 read them, in a fresh process (FW_config is read at
        # import time)
        code = f"""
import json, os
from jobflow.settings import JobflowSettings
from atomate2.settings import Atomate2Settings
d = {str(out)!r}
js = JobflowSettings(CONFIG_FILE=d + '/jobflow.yaml')
a2 = Atomate2Settings(CONFIG_FILE=d + '/atomate2.yaml')
got = dict(store=type(js.JOB_STORE.docs_store).__name__, vasp=a2.VASP_CMD)
if os.path.exists(d + '/FW_config.yaml'):
    from fireworks import LaunchPad, FWorker
    from fireworks.utilities.fw_serializers import load_object_from_file
    import fireworks.fw_config as fwc
    lp = LaunchPad.from_file(d + '/my_launchpad.yaml')
    w = FWorker.from_file(d + '/my_fworker.yaml')
    q = load_object_from_file(d + '/my_qadapter.yaml')
    got.update(lp=lp.name, worker=w.name, env=w.env, q=q.q_type, script=q.get_script_str('.'),
               mock=fwc.MONGOMOCK_SERVERSTORE_FILE, loc=fwc.LAUNCHPAD_LOC, logdir=q['logdir'])
print(json.dumps(got))
"""
        env2 = dict(env, FW_CONFIG_FILE=str(out / "FW_config.yaml")) if mongodb else env
        r = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env2, cwd=tmp_path
        )
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout.strip().splitlines()[-1])
        assert got["vasp"] == "srun vasp_std"
        from polaronflow.settings import load_settings

        s = load_settings(out / "polaronflow.yaml")
        assert s.project_dir == (tmp_path / "proj").resolve()
        if not mongodb:
            assert got["store"] == "SQLiteStore"
            assert s.launchpad_file is None
            continue
        assert got["loc"] == str((out / "my_launchpad.yaml").resolve())
        assert got["store"] == "MongoStore" and got["q"] == "PBS" and got["mock"] is None
        assert "#PBS -l nodes=2:ppn=64" in got["script"] and not got["env"]
        assert Path(got["logdir"]).is_dir()  # qlaunch needs it and does not create it
        for name in ("my_launchpad.yaml", "jobflow.yaml"):
            assert stat.S_IMODE((out / name).stat().st_mode) == 0o600
        assert stat.S_IMODE((out / "my_qadapter.yaml").stat().st_mode) & 0o044 == 0o044
        assert s.launchpad_file is not None
    # existing files are not overwritten without --force
    p = _cli("init", "--out", str(tmp_path / "embedded"), env=env, cwd=tmp_path)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2 and "--force" in err


def test_init_jobflow_remote_writes_a_project_file(tmp_path):
    """`init --runner jobflow-remote`: its project file (0600) in jobflow-remote's projects
    folder, a settings file that sends submit there; no FireWorks files. (Runs without
    jobflow-remote: tests/workflows/runtime/test_jfremote.py runs a campaign with it.)"""
    import stat

    import yaml

    env = dict(_env(tmp_path), JFREMOTE_PROJECTS_FOLDER=str(tmp_path / "jfprojects"))
    args = ["init", "--runner", "jobflow-remote", "--out", "cfg", "--project-dir", "proj"]
    p = _cli(*args, "--mongo-db", "campaigns", "--jf-worker", "ws", env=env, cwd=tmp_path)
    stdout, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    project_file = tmp_path / "jfprojects" / "polaronflow.yaml"
    assert f"wrote {project_file}" in stdout and "export JFREMOTE_PROJECT=polaronflow" in stdout
    import importlib.util

    installed = importlib.util.find_spec("jobflow_remote") is not None
    assert ("pip install 'polaronflow[remote]'" in err) != installed, err
    assert sorted(f.name for f in (tmp_path / "cfg").iterdir()) == [
        "atomate2.yaml",
        "jobflow.yaml",
        "polaronflow.yaml",
    ]
    for path in (project_file, tmp_path / "cfg" / "jobflow.yaml"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    project = yaml.safe_load(project_file.read_text())
    worker = project["workers"]["ws"]
    assert (worker["type"], worker["scheduler_type"]) == ("local", "shell")
    assert worker["work_dir"] == str((tmp_path / "proj").resolve() / "jfremote-runs")
    assert f"export PATH={Path(sys.executable).parent}:$PATH" in worker["pre_run"]
    assert project["queue"]["store"]["database"] == "campaigns"
    assert project["jobstore"]["docs_store"]["collection_name"] == "outputs"
    # jobflow-remote refuses a runner socket path over 97 characters: init moves the daemon
    # folder to the temporary folder when the default (under the projects folder) is too long
    default = tmp_path / "jfprojects" / "polaronflow" / "daemon"
    daemon = Path(project.get("daemon_dir") or default)
    assert len(str(daemon / "s.sock")) <= 97
    assert ("daemon_dir" in project) == (len(str(default / "s.sock")) > 97)
    from polaronflow.settings import load_settings

    s = load_settings(tmp_path / "cfg" / "polaronflow.yaml")
    assert (s.runner, s.jfremote_project, s.jfremote_worker) == (
        "jobflow-remote",
        "polaronflow",
        "ws",
    )
    assert s.jobstore_file == (tmp_path / "cfg" / "jobflow.yaml").resolve()
    assert s.launchpad_file is None
    # existing files (the project file among them) are kept without --force
    p = _cli(*args, env=env, cwd=tmp_path)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2 and str(project_file) in err and "--force" in err
    p = _cli(*args, "--force", env=env, cwd=tmp_path)
    p.communicate(timeout=120)
    assert p.returncode == 0
    assert yaml.safe_load(project_file.read_text())["workers"].keys() == {"local"}


def test_fw_config_file_is_honoured_before_the_embedded_store(tmp_path, monkeypatch):
    from polaronflow.settings import load_settings

    (tmp_path / "my_launchpad.yaml").write_text("host: localhost\nname: fw\n")
    (tmp_path / "FW_config.yaml").write_text(f"CONFIG_FILE_DIR: {tmp_path}\n")
    monkeypatch.delenv("POLARONFLOW_CONFIG_FILE", raising=False)
    monkeypatch.setenv("FW_CONFIG_FILE", str(tmp_path / "FW_config.yaml"))
    monkeypatch.setenv("JOBFLOW_CONFIG_FILE", str(tmp_path / "jobflow.yaml"))
    s = load_settings(project_dir=tmp_path / "p")
    assert s.launchpad_file == tmp_path / "my_launchpad.yaml"
    assert s.jobstore_file == tmp_path / "jobflow.yaml"
    # an embedded-store FW_config (mongomock) is not a MongoDB LaunchPad
    (tmp_path / "FW_config.yaml").write_text("MONGOMOCK_SERVERSTORE_FILE: /x/launchpad.json\n")
    assert load_settings(project_dir=tmp_path / "p").launchpad_file is None


def test_settings_sources(tmp_path, monkeypatch):
    from polaronflow.errors import ConfigError
    from polaronflow.settings import load_settings

    f = tmp_path / "s.yaml"
    f.write_text("project_dir: ~/pf\nwalltime: 3600\n")
    monkeypatch.setenv("POLARONFLOW_CONFIG_FILE", str(f))
    s = load_settings()
    assert s.project_dir == Path("~/pf").expanduser() and s.walltime == 3600
    monkeypatch.setenv("POLARONFLOW_WALLTIME", "7200")
    assert load_settings().walltime == 7200  # environment beats the file
    assert load_settings(walltime=60).walltime == 60  # arguments beat both
    monkeypatch.delenv("POLARONFLOW_WALLTIME")
    f.write_text("walltime: -5\n")
    with pytest.raises(ConfigError, match="walltime"):
        load_settings()
    f.write_text("unknown_key: 1\n")
    with pytest.raises(ConfigError, match="unknown_key"):
        load_settings()
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")


def test_mongodb_launchpad(tmp_path, mongo_uri):
    from fireworks import LaunchPad

    from polaronflow.settings import load_settings
    from polaronflow.workflows.runtime.submit import submit_flow

    db = f"pf_test_{os.getpid()}"
    lp_file = tmp_path / "my_launchpad.yaml"
    lp_file.write_text(f"host: {mongo_uri}\nname: {db}\nuri_mode: true\n")
    js_file = tmp_path / "jobflow.yaml"
    js_file.write_text(
        "JOB_STORE:\n  docs_store:\n    type: MongoStore\n"
        f"    host: {mongo_uri}\n    database: {db}\n    collection_name: outputs\n"
    )
    lp = LaunchPad.from_file(str(lp_file))
    lp.reset("", require_password=False)
    settings = load_settings(launchpad_file=lp_file, jobstore_file=js_file)
    res = submit_flow(_small_flow("mongo"), settings)
    assert res.n_jobs == 9
    assert lp.get_wf_summary_dict(lp.get_wf_ids()[0])["name"] == "mongo"
    lp.connection.drop_database(db)


def test_run_flow_locally_uses_embedded_jobstore(tmp_path):
    from jobflow import Flow, job

    from polaronflow.settings import load_settings
    from polaronflow.workflows.runtime.submit import embedded_jobstore, run_flow_locally

    @job
    def double(x):
        return 2 * x

    first = double(3)
    second = double(first.output)
    settings = load_settings(project_dir=tmp_path / "p")
    run_flow_locally(Flow([first, second]), settings)
    store = embedded_jobstore(tmp_path / "p")
    store.connect()
    assert store.get_output(second.uuid) == 12
    assert len(list((tmp_path / "p" / "runs").iterdir())) == 2  # one folder per job


_RACER = """
import sys, time
from pathlib import Path
from jobflow import Flow
from pymatgen.core import Lattice, Structure
from polaronflow.settings import load_settings
from polaronflow.workflows.campaign.jobs import supercell_job

project, go, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
flow = Flow([supercell_job(Structure(Lattice.cubic(3.8), ["W"], [[0, 0, 0]]), (1, 1, 1))],
            name=name)
settings = load_settings(project_dir=project)
from polaronflow.workflows.runtime.submit import submit_flow
(go.parent / f"ready-{name}").touch()
while not go.exists():  # start line: every process reaches the store at the same moment
    time.sleep(0.01)
print(submit_flow(flow, settings).fw_ids)
"""


def test_simultaneous_submitters_lose_nothing(tmp_path):
    go = tmp_path / "go"
    project = tmp_path / "project"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(project), str(go), f"wf{i}"],
            env=_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    import time

    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < len(procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.write_text("go")
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[1][-500:] for r in results]
    from polaronflow.workflows.runtime.submit import embedded_launchpad

    with embedded_launchpad(project, timeout=30) as lp:
        names = sorted(lp.get_wf_summary_dict(i)["name"] for i in lp.get_wf_ids())
        ids = sorted(fw["fw_id"] for fw in lp.fireworks.find({}, {"fw_id": 1}))
    assert names == ["wf0", "wf1", "wf2", "wf3"]
    assert ids == [1, 2, 3, 4]
