"""jobflow-remote as the runner: a small campaign to COMPLETED through the commands users run.

``polaronflow init --runner jobflow-remote`` (project file with a local worker, queue and
JobStore on the test MongoDB, SecantusDB), jobflow-remote's own ``jf admin reset``,
``polaronflow submit --runner`` (via the settings init wrote) ``--emulator``, ``jf runner
start``, ``jf job list`` until every job is COMPLETED, ``jf runner shutdown``, then
``polaronflow collect`` from the project's JobStore and ``polaronflow reproduce``.

jobflow-remote requires pymongo<4.11, so it lives in its own environment: the one this test
runs in if it has jobflow-remote, else ``.venv-remote`` (``make test`` builds it with
``pip install -e '.[test,remote]'`` and sets ``POLARONFLOW_REQUIRE_JFREMOTE=1``, which turns
the skip for a missing jobflow-remote into a failure).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO = Path(__file__).resolve().parents[3]
#: Jobs of the small campaign at the end (as in test_mongo_workers: 10 submitted, 3 added).
N_JOBS = 13
#: Run folders `collect` links for it.
N_RUNS = 8
STATES = re.compile(
    r"\b(COMPLETED|FAILED|REMOTE_ERROR|READY|WAITING|CHECKED_OUT|UPLOADED|SUBMITTED|RUNNING|"
    r"TERMINATED|DOWNLOADED|BATCH_SUBMITTED|BATCH_RUNNING|PAUSED|STOPPED|USER_STOPPED|CANCELLED)\b"
)


def _remote_bin() -> Path | None:
    """The scripts folder of an environment with polaronflow and jobflow-remote, or None."""
    here = Path(sys.executable).parent
    if importlib.util.find_spec("jobflow_remote") is not None and (here / "jf").exists():
        return here
    venv = Path(os.environ.get("POLARONFLOW_REMOTE_VENV", REPO / ".venv-remote"))
    if (venv / "bin" / "jf").exists() and (venv / "bin" / "polaronflow").exists():
        return venv / "bin"
    return None


BIN = _remote_bin()
if BIN is None and os.environ.get("POLARONFLOW_REQUIRE_JFREMOTE") == "1":
    raise RuntimeError(
        "POLARONFLOW_REQUIRE_JFREMOTE=1 but jobflow-remote is not installed here nor in "
        ".venv-remote (make builds it: pip install -e '.[test,remote]')"
    )
pytestmark = [
    pytest.mark.filterwarnings("ignore"),
    pytest.mark.skipif(
        BIN is None,
        reason="jobflow-remote is not installed (pip install 'polaronflow[remote]' here, or "
        "`make test`, which builds .venv-remote with it)",
    ),
]


class User:
    """Runs commands as a user would, in a fresh HOME with the remote environment on PATH."""

    def __init__(self, home: Path) -> None:
        self.home = home
        drop = ("FW_", "JOBFLOW_", "JFREMOTE_", "POLARONFLOW_", "ATOMATE2_", "PMG_")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        path = f"{BIN}{os.pathsep}{os.environ['PATH']}"
        self.env.update(HOME=str(home), COLUMNS="200", PATH=path)
        self.outputs: list[str] = []

    def export(self, lines: str) -> None:
        for name, value in re.findall(r"^export (\w+)=(\S+)$", lines, re.M):
            self.env[name] = value

    def run(self, *args: str, rc: int = 0, timeout: float = 300) -> str:
        proc = subprocess.run(
            list(args),
            cwd=self.home,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        out = proc.stdout + proc.stderr
        self.outputs.append(out)
        assert proc.returncode == rc, f"{' '.join(args)} exited {proc.returncode}:\n{out[-4000:]}"
        assert "Traceback" not in out, f"{' '.join(args)}:\n{out[-4000:]}"
        return out


def _states(job_list: str) -> Counter:
    return Counter(STATES.findall(job_list))


def _daemon_dir(home: Path, project: str) -> Path:
    """The runner's daemon folder: the project file's daemon_dir (init writes one when the
    default under HOME would give a socket path jobflow-remote refuses), else the default."""
    import yaml

    data = yaml.safe_load((home / ".jfremote" / f"{project}.yaml").read_text())
    return Path(data.get("daemon_dir") or home / ".jfremote" / project / "daemon")


def _supervisord_pid(home: Path, project: str) -> int | None:
    pid_file = _daemon_dir(home, project) / "supervisord.pid"
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in _proc_state(pid)


def _proc_state(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0]).lower()
    except (OSError, IndexError):
        return "zombie"


def test_campaign_completes_with_jobflow_remote_local_worker(mongo_uri, tmp_path):
    url = urlparse(mongo_uri)
    host, port = url.hostname or "127.0.0.1", str(url.port or 27017)
    db, project = f"pf_jfr_{uuid.uuid4().hex[:12]}", f"pfjfr{uuid.uuid4().hex[:6]}"
    user = User(tmp_path)

    out = user.run(
        "polaronflow", "init", "--runner", "jobflow-remote", "--jf-project", project,
        "--mongo-host", host, "--mongo-port", port, "--mongo-db", db,
        "--out", "cfg", "--project-dir", "proj",
    )  # fmt: skip
    user.export(out)
    project_file = tmp_path / ".jfremote" / f"{project}.yaml"
    assert f"wrote {project_file}" in out and user.env["JFREMOTE_PROJECT"] == project
    for secret_file in (project_file, tmp_path / "cfg" / "jobflow.yaml"):
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600, secret_file
    # the user's edit: a quicker runner than the template's 5 s rounds
    text = project_file.read_text()
    text, n = re.subn(r"(delay_\w+): 5\b", r"\1: 1", text)
    assert n == 3
    project_file.write_text(text)
    user.run("jf", "project", "check", "--jobstore")
    user.run("jf", "project", "check", "--queue")
    user.run("jf", "admin", "reset", "--yes")  # a new database, once

    import yaml

    from polaronflow.emulator.fast import fast_parameters_file

    fast = fast_parameters_file(tmp_path / "fast.yaml")
    submit = ("polaronflow", "submit", "--emulator", "--ion", "Mg", "--supercell", "2,1,1",
              "--schedule", "9,5", "--no-references", "--incar-yaml", str(fast))  # fmt: skip
    out = user.run(*submit)
    assert "SYNTHETIC" in out and f"jobflow-remote project {project}, worker local" in out, out
    assert "submitted flow 'polaronflow-campaign-" in out, out
    assert "already submitted" in user.run(*submit)  # idempotent, as with FireWorks

    assert yaml.safe_load(project_file.read_text())["workers"]["local"]["type"] == "local"
    user.run("jf", "runner", "start")
    supervisord = _supervisord_pid(tmp_path, project)
    try:
        deadline = time.monotonic() + 900  # ≈ 4 min alone; slower beside other tests
        while True:
            states = _states(user.run("jf", "job", "list"))
            if states == Counter({"COMPLETED": N_JOBS}):
                break
            bad = {s: n for s, n in states.items() if s in ("FAILED", "REMOTE_ERROR")}
            if bad or time.monotonic() > deadline:
                info = user.run("jf", "job", "list") + _logs(tmp_path, project)
                pytest.fail(f"jobs did not all complete ({dict(states)}):\n{info[-6000:]}")
            time.sleep(10)  # each `jf job list` costs a second of CPU
        flows = user.run("jf", "flow", "list")
        assert "COMPLETED" in flows and "polaronflow-campaign-" in flows, flows
    finally:
        user.run("jf", "runner", "shutdown")
        _wait_stopped(supervisord)
        daemon = _daemon_dir(tmp_path, project)
        if not daemon.is_relative_to(tmp_path):  # moved to the temporary folder by init
            shutil.rmtree(daemon, ignore_errors=True)

    # the queue and the JobStore, read directly: every job once, every output stored once
    from pymongo import MongoClient

    client = MongoClient(host, int(port), serverSelectionTimeoutMS=30000)
    try:
        jobs = list(client[db]["jf_jobs"].find({}, {"uuid": 1, "index": 1, "state": 1}))
        assert len(jobs) == N_JOBS and {j["state"] for j in jobs} == {"COMPLETED"}
        (flow,) = client[db]["jf_flows"].find({}, {"metadata": 1, "state": 1})
        assert flow["state"] == "COMPLETED" and flow["metadata"]["polaronflow_synthetic"] is True
        outputs = Counter(
            (d["uuid"], d["index"]) for d in client[db]["outputs"].find({}, {"uuid": 1, "index": 1})
        )
        assert set(outputs) == {(j["uuid"], j["index"]) for j in jobs}
        assert set(outputs.values()) == {1}
    finally:
        client.close()

    # polaronflow status reads jobflow-remote's queue when that is the settings' runner
    out = user.run("polaronflow", "status", "--json")
    status, _ = json.JSONDecoder().raw_decode(out[out.index("{") :])
    assert status["runner"] == "jobflow-remote", status
    assert status["launchpad"] == f"jobflow-remote project {project}"
    (wf,) = status["workflows"]
    assert wf["campaign_id"] == flow["metadata"]["polaronflow_campaign_id"]
    assert wf["state"] == "COMPLETED" and wf["counts"] == {"COMPLETED": N_JOBS}
    assert len(wf["fireworks"]) == N_JOBS and len({fw["fw_id"] for fw in wf["fireworks"]}) == N_JOBS
    for fw in wf["fireworks"]:
        assert Path(fw["launch_dir"]).is_dir() and fw["failure"] is None, fw
        assert Path(fw["launch_dir"]).is_relative_to(tmp_path / "proj" / "jfremote-runs")
        named = fw["stores_output_of"]
        assert (named is not None) == (fw["name"] == "store_inputs"), fw
    assert {"wo3-unit-relax", "mg-ramp-u9", "mg-static"} <= {fw["name"] for fw in wf["fireworks"]}
    # the unit cell's volume check replaced itself once: its store_inputs job names it
    assert {fw["stores_output_of"] for fw in wf["fireworks"]} == {None, "wo3-unit-relax-check"}
    table = user.run("polaronflow", "status")
    assert "db_id" in table and "run dir" in table and "COMPLETED" in table, table

    # job folders carry no database address (the runner, not the job, writes the JobStore)
    for path in (tmp_path / "proj" / "jfremote-runs").rglob("*"):
        if path.is_file() and path.suffix != ".gz":
            assert db not in path.read_text(errors="replace"), path

    # results reach collect (the project's JobStore, from jobflow.yaml) and reproduce
    out = user.run("polaronflow", "collect", "RUNS")
    assert f"collected {N_RUNS} runs into RUNS" in out, out
    # one campaign's jobs, read from jobflow-remote's queue (not the whole JobStore)
    assert f"the only campaign {flow['metadata']['polaronflow_campaign_id'][:12]}" in out, out
    assert f"project {project}, {N_JOBS} jobs)" in out, out
    runs = tmp_path / "RUNS"
    for link in runs.iterdir():
        target = os.readlink(link)
        assert not os.path.isabs(target) and link.resolve().is_relative_to(tmp_path / "proj")
    assert {p.name for p in runs.iterdir()} >= {"wo3-unit-relax", "mg-static", "mg-ramp-u5"}
    out = user.run("polaronflow", "reproduce", "RUNS", "--markdown", "repro.md", rc=1)
    assert "SYNTHETIC" in out


def _wait_stopped(pid: int | None, timeout: float = 60) -> None:
    """The runner daemon (supervisord, started by this test) is gone; killed if it hangs."""
    if pid is None:
        return
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        pytest.fail(f"jobflow-remote's runner daemon (pid {pid}) did not stop in {timeout} s")


def _logs(home: Path, project: str) -> str:
    logs = sorted((home / ".jfremote" / project / "log").glob("*.log"))
    return "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in logs)
