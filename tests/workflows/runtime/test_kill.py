"""Kill ``polaronflow launch`` (-9, TERM, INT) and a worker mid-job: one run per job, no orphans.

The jobs run a slow fake VASP the way custodian runs VASP (``start_new_session=True``: a
session and process group of its own, which no signal to the worker reaches). Every start and
end of the fake VASP is appended to a log, so the test can count runs per job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.filterwarnings("ignore")

BIN = Path(sys.executable).parent
JOBS = ("alpha", "beta", "gamma")
SECONDS = 2.0

FAKE_VASP = """
import os, sys, time
log, name, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
with open(log, "a") as fh:
    fh.write(f"start {name} {os.getpid()} {time.time():.2f}\\n")
time.sleep(seconds)
with open(log, "a") as fh:
    fh.write(f"end {name} {os.getpid()} {time.time():.2f}\\n")
"""

FAKE_JOBS = """
import subprocess, sys
from jobflow import job

@job
def vasp(name, log, script, seconds):
    # like custodian: VASP in a session of its own
    proc = subprocess.Popen([sys.executable, script, log, name, str(seconds)],
                            start_new_session=True)
    return proc.wait()
"""


class Campaign:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.project = root / "project"
        self.log = root / "vasp.log"
        self.script = root / "fake_vasp.py"
        self.script.write_text(FAKE_VASP)
        (root / "pf_fake_jobs.py").write_text(FAKE_JOBS)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("FW_", "JOBFLOW_"))},
            "PYTHONPATH": str(root),
            "HOME": str(root),
            "POLARONFLOW_PROJECT_DIR": str(self.project),
        }
        self.env.pop("POLARONFLOW_CONFIG_FILE", None)
        sys.path.insert(0, str(root))
        try:
            from jobflow import Flow
            from pf_fake_jobs import vasp

            from polaronflow.settings import load_settings
            from polaronflow.workflows.runtime.submit import submit_flow

            jobs = []
            for name in JOBS:
                j = vasp(name, str(self.log), str(self.script), SECONDS)
                j.name = name
                jobs.append(j)
            submit_flow(Flow(jobs), load_settings(project_dir=self.project))
        finally:
            sys.path.remove(str(root))
            sys.modules.pop("pf_fake_jobs", None)
        self.procs: list[subprocess.Popen] = []

    def launch(self, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            [str(BIN / "polaronflow"), "launch", "--workers", "2", *args],
            env=self.env,
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # like a terminal's foreground job: a group of its own
        )
        self.procs.append(proc)
        return proc

    def events(self) -> list[tuple[str, str, int]]:
        if not self.log.exists():
            return []
        return [
            (kind, name, int(pid))
            for kind, name, pid, _ in (line.split() for line in self.log.read_text().splitlines())
        ]

    def wait_started(self, n: int = 1, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(1 for kind, _, _ in self.events() if kind == "start") >= n:
                return
            time.sleep(0.05)
        pytest.fail(f"fake VASP did not start: {self.outputs()}")

    def fake_vasp_alive(self) -> list[int]:
        found = []
        for p in psutil.process_iter(["cmdline"]):
            try:
                if str(self.script) in (p.info["cmdline"] or []) and p.status() != "zombie":
                    found.append(p.pid)
            except psutil.Error:
                pass
        return found

    def assert_nothing_left(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.fake_vasp_alive() and not self._workers_alive():
                return
            time.sleep(0.1)
        for pid in self._workers_alive():  # their stacks, into the worker logs
            os.kill(pid, signal.SIGUSR1)
        time.sleep(0.5)
        logs = "\n".join(p.read_text()[-4000:] for p in self.project.glob("launches/*.log"))
        pytest.fail(
            f"left behind: VASP {self.fake_vasp_alive()}, workers {self._workers_alive()}\n{logs}"
        )

    def _workers_alive(self) -> list[int]:
        found = []
        for p in psutil.process_iter(["cmdline", "environ"]):
            try:
                env = p.info["environ"] or {}
                if env.get("POLARONFLOW_PROJECT_DIR") == str(self.project) and p.status() != (
                    "zombie"
                ):
                    found.append(p.pid)
            except psutil.Error:
                pass
        return found

    def outputs(self) -> str:
        return "\n".join(f"{p.args}: {p.stdout and p.stdout.read()}" for p in self.procs)

    def finish(self) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(BIN / "polaronflow"), "launch", "--workers", "2", "--json"],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done

    def assert_each_job_completed_once(self) -> None:
        ends = Counter(name for kind, name, _ in self.events() if kind == "end")
        assert ends == Counter(JOBS), self.events()
        # never two copies of one job at a time: every start after the first follows a kill
        from polaronflow.workflows.runtime.submit import embedded_launchpad

        with embedded_launchpad(self.project, timeout=30) as lp:
            fws = list(lp.fireworks.find({}, {"name": 1, "state": 1, "launches": 1}))
        assert {fw["name"]: fw["state"] for fw in fws} == dict.fromkeys(JOBS, "COMPLETED")
        assert all(len(fw["launches"]) == 1 for fw in fws)

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for pid in self.fake_vasp_alive() + self._workers_alive():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def campaign(tmp_path):
    c = Campaign(tmp_path)
    yield c
    c.cleanup()


def test_kill_9_launch_leaves_no_process_and_the_next_launch_reruns_the_lost_job(campaign):
    proc = campaign.launch()
    campaign.wait_started()
    time.sleep(0.5)  # the checkout is saved within a quarter of a second
    proc.kill()
    proc.wait()
    killed = time.time()
    campaign.assert_nothing_left()
    assert not [e for e in campaign.events() if e[0] == "end"], (killed, campaign.log.read_text())
    done = campaign.finish()
    import json

    result = json.loads(done.stdout)
    assert result["rerun"] and not result["left_running"]  # recognised as lost on this host
    campaign.assert_each_job_completed_once()
    campaign.assert_nothing_left()


@pytest.mark.parametrize(("sig", "name"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl-C")])
def test_term_or_ctrl_c_stops_saves_and_leaves_the_jobs_rerunnable(campaign, sig, name):
    proc = campaign.launch()
    campaign.wait_started()
    os.killpg(proc.pid, sig)  # what the terminal (or the batch system) does
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"interrupted ({name})" in lines[0], err
    assert "READY to run again" in lines[0] and "Traceback" not in err
    campaign.assert_nothing_left()
    from polaronflow.workflows.runtime.submit import embedded_launchpad

    with embedded_launchpad(campaign.project, timeout=30) as lp:
        states = {f["state"] for f in lp.fireworks.find({}, {"state": 1})}
    assert states <= {"READY", "COMPLETED"}  # nothing FIZZLED, nothing RUNNING
    campaign.finish()
    campaign.assert_each_job_completed_once()
    campaign.assert_nothing_left()


def test_a_killed_worker_takes_its_vasp_along_and_its_job_runs_once_more(campaign):
    proc = campaign.launch()
    campaign.wait_started()
    (_, _, vasp_pid) = next(e for e in campaign.events() if e[0] == "start")
    launcher = psutil.Process(proc.pid)
    worker = next(
        w for w in launcher.children() if vasp_pid in {c.pid for c in w.children(recursive=True)}
    )
    worker.kill()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "died" in err and "reset to READY" in err, err
    assert not psutil.pid_exists(vasp_pid) or psutil.Process(vasp_pid).status() == "zombie"
    campaign.assert_nothing_left()
    campaign.finish()
    campaign.assert_each_job_completed_once()
    campaign.assert_nothing_left()
