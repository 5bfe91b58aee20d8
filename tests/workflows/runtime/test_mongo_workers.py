"""The campaign on a real MongoDB-wire server (SecantusDB) with concurrent FireWorks workers.

Workers are FireWorks' own ``rlaunch rapidfire`` in separate processes; VASP is the emulator
run by atomate2's real ``run_vasp`` (custodian with polaronflow's handlers and validators; the
``mock_vasp`` machinery in custodian mode, which also shortens custodian's polling step).
Each test uses its own database on the session server or a server of its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore")

REPO = Path(__file__).resolve().parents[3]

#: Test numbers quoted in README's "Reliability" table.
N_WORKERS = 3
N_KILL_WORKERS = 2  # plus one fresh worker after the kill
# Mg campaign, 2-step ramp, no references: 8 jobs + the unit cell's volume check + analysis
N_SUBMITTED = 10
# At run time the unit cell is relaxed once more (the emulator lands on its relaxed cell at
# once): the check is replaced by wo3-unit-relax-2, a second check and jobflow's store_inputs.
N_FIREWORKS = N_SUBMITTED + 3

# A FireWorks worker process: rlaunch with the emulator as VASP. PF_TEST_VASP_DELAY makes
# VASP jobs (only PF_TEST_SLOW_JOB if set) wait before VASP starts, so a test can kill a
# worker in the middle of a job.
WORKER = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, os.environ["PF_TEST_DIR"])
from test_mongo_workers import serialise_id_counters
serialise_id_counters()
from polaronflow.emulator.mock import MockVasp, Patcher, install
install(Patcher(), MockVasp(mode="custodian"))
import atomate2.vasp.jobs.base as base
_run_vasp = base.run_vasp
from jobflow import CURRENT_JOB
def run_vasp(*args, **kwargs):
    Path("VASP_STARTED").write_text(str(os.getpid()))
    if os.environ.get("PF_TEST_SLOW_JOB", CURRENT_JOB.job.name) == CURRENT_JOB.job.name:
        time.sleep(float(os.environ.get("PF_TEST_VASP_DELAY", "0")))
    return _run_vasp(*args, **kwargs)
base.run_vasp = run_vasp
from fireworks.scripts.rlaunch_run import rlaunch
sys.argv = ["rlaunch", *sys.argv[1:]]
sys.exit(rlaunch())
"""


def serialise_id_counters() -> None:
    """Make FireWorks' id counters safe on the test server (SecantusDB), in this process.

    FireWorks takes fw and launch ids from one ``find_one_and_update({}, {"$inc": ...})``,
    atomic on MongoDB. SecantusDB 0.7.0b3 does not serialise it between concurrent clients:
    three processes doing 300 increments each got 828 distinct values out of 900 (measured),
    so two workers could be handed the same launch id and one launch document overwrote the
    other. A unique ``_id`` insert is atomic there (900 of 900), so each id is claimed by
    inserting it into a claims collection; a value another process got already is skipped.
    This is a test-server workaround: on MongoDB the claims only ever succeed first time.
    """
    from fireworks.core.launchpad import LaunchPad
    from pymongo.errors import BulkWriteError

    if getattr(LaunchPad, "_pf_serialised", False):
        return
    original_fw, original_launch = LaunchPad.get_new_fw_id, LaunchPad.get_new_launch_id

    def claim(lp, kind: str, take, quantity: int = 1) -> int:
        while True:
            first = take()
            try:
                lp.db[f"pf_test_{kind}_claims"].insert_many(
                    [{"_id": first + i} for i in range(quantity)], ordered=True
                )
                return first
            except BulkWriteError as exc:  # insert_many reports E11000 this way
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise
                continue  # another process has (part of) this block: take the next one

    def get_new_fw_id(self, quantity=1):
        return claim(self, "fw_id", lambda: original_fw(self, quantity), quantity)

    def get_new_launch_id(self):
        return claim(self, "launch_id", lambda: original_launch(self))

    LaunchPad.get_new_fw_id = get_new_fw_id
    LaunchPad.get_new_launch_id = get_new_launch_id
    LaunchPad._pf_serialised = True


class Setup:
    """LaunchPad/JobStore/FWorker files for one database, and worker processes."""

    def __init__(self, root: Path, host: str, port: int, db: str) -> None:
        self.root, self.host, self.port, self.db = root, host, port, db
        self.launchpad = root / "my_launchpad.yaml"
        self.launchpad.write_text(
            f"host: {host}\nport: {port}\nname: {db}\n"
            "mongoclient_kwargs:\n  serverSelectionTimeoutMS: 60000\n"
        )
        self.jobflow = root / "jobflow.yaml"
        store = f"type: MongoStore\n    database: {db}\n    host: {host}\n    port: {port}\n"
        self.jobflow.write_text(
            "JOB_STORE:\n  docs_store:\n    collection_name: outputs\n    "
            + store
            + "  additional_stores:\n    data:\n      collection_name: outputs_blobs\n      "
            + store.replace("\n    ", "\n      ")
        )
        self.fworker = root / "my_fworker.yaml"
        self.fworker.write_text("name: emulator-worker\ncategory: ''\nquery: '{}'\n")
        # Live launches ping every second, so a short lost-run expiry only catches dead ones.
        self.fw_config = root / "FW_config.yaml"
        self.fw_config.write_text("PING_TIME_SECS: 1\n")
        (root / "worker.py").write_text(WORKER)
        self.workers: list[subprocess.Popen] = []

    def settings(self):
        from polaronflow.settings import load_settings

        return load_settings(
            launchpad_file=self.launchpad,
            jobstore_file=self.jobflow,
            project_dir=self.root / "project",
        )

    def submit(self):
        from polaronflow.emulator.fast import fast_parameters_file
        from polaronflow.workflows.runtime.submit import submit_campaign

        return submit_campaign(
            settings=self.settings(),
            ions=["Mg"],
            references=False,
            schedule=(9, 5),
            supercell=(2, 1, 1),
            potcar_spec=True,
            parameters_file=fast_parameters_file(self.root / "fast.yaml"),
        )

    def start_worker(self, delay: float = 0.0, slow_job: str | None = None) -> subprocess.Popen:
        i = len(self.workers)
        cwd = self.root / f"worker{i}"
        cwd.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FW_", "JOBFLOW_"))}
        env.update(
            HOME=str(self.root),
            FW_CONFIG_FILE=str(self.fw_config),
            JOBFLOW_CONFIG_FILE=str(self.jobflow),
            PF_TEST_VASP_DELAY=str(delay),
            PF_TEST_DIR=str(Path(__file__).parent),
        )
        if slow_job is not None:
            env["PF_TEST_SLOW_JOB"] = slow_job
        args = ["-l", str(self.launchpad), "-w", str(self.fworker), "rapidfire", "--sleep", "1"]
        proc = subprocess.Popen(
            [sys.executable, str(self.root / "worker.py"), *args],
            cwd=cwd,
            env=env,
            stdout=(cwd / "worker.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill takes custodian's VASP too
        )
        proc.folder = cwd  # type: ignore[attr-defined]
        self.workers.append(proc)
        return proc

    def wait_workers(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        for proc in self.workers:
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stop_workers()
                pytest.fail(f"workers did not finish in {timeout} s: {self.logs()}")

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p}\n{p.read_text()[-3000:]}"
            for p in sorted(self.root.glob("worker*/worker.log"))
        )

    def launchpad_obj(self):
        from fireworks import LaunchPad

        return LaunchPad.from_file(str(self.launchpad))

    def output_counts(self) -> Counter:
        from pymongo import MongoClient

        client = MongoClient(self.host, self.port, serverSelectionTimeoutMS=30000)
        try:
            docs = client[self.db]["outputs"].find({}, {"uuid": 1, "index": 1, "name": 1})
            return Counter((d["name"], d["uuid"], d["index"]) for d in docs)
        finally:
            client.close()


def _assert_completed_once(setup: Setup, n_fws: int) -> None:
    """Every firework COMPLETED with exactly one COMPLETED launch; every output stored once."""
    lp = setup.launchpad_obj()
    fws = list(lp.fireworks.find({}, {"fw_id": 1, "name": 1, "state": 1, "launches": 1}))
    assert len(fws) == n_fws
    assert {fw["state"] for fw in fws} == {"COMPLETED"}, setup.logs()
    for fw in fws:
        launches = list(lp.launches.find({"launch_id": {"$in": fw["launches"]}}, {"state": 1}))
        assert [ln["state"] for ln in launches] == ["COMPLETED"], fw["name"]
    ids = [launch for fw in fws for launch in fw["launches"]]
    # every launch id belongs to exactly one Firework (see serialise_id_counters)
    assert len(set(ids)) == len(ids), sorted({i for i in ids if ids.count(i) > 1})
    assert lp.launches.count_documents({}) == len(ids) + sum(
        len(fw.get("archived_launches", []))
        for fw in lp.fireworks.find({}, {"archived_launches": 1})
    )
    completed = [d["launch_id"] for d in lp.launches.find({"state": "COMPLETED"}, {"launch_id": 1})]
    assert sorted(completed) == sorted(ids), (completed, ids)
    counts = setup.output_counts()
    assert len(counts) == n_fws, counts  # one output per job (every job ran once)...
    assert set(counts.values()) == {1}, counts  # ... and stored exactly once
    assert {name for name, _, _ in counts} == {fw["name"] for fw in fws}


@pytest.fixture
def setup(mongo_uri, tmp_path):
    from urllib.parse import urlparse

    url = urlparse(mongo_uri)
    s = Setup(tmp_path, url.hostname or "127.0.0.1", url.port or 27017, f"pf_{uuid.uuid4().hex}")
    yield s
    s.stop_workers()


def test_three_concurrent_workers_complete_every_job_once(setup):
    res = setup.submit()
    assert res.n_jobs == N_SUBMITTED and not res.already_submitted
    for _ in range(N_WORKERS):
        setup.start_worker()
    setup.wait_workers()
    _assert_completed_once(setup, N_FIREWORKS)
    assert [p.returncode for p in setup.workers] == [0] * N_WORKERS, setup.logs()
    # status reads the same MongoDB configuration: the whole campaign, completed
    from polaronflow.workflows.runtime.status import campaign_status

    status = campaign_status(setup.settings())
    (wf,) = status.workflows
    assert wf.counts == {"COMPLETED": N_FIREWORKS} and wf.campaign_id == res.campaign_id
    assert all(fw.launch_dir and Path(fw.launch_dir).is_dir() for fw in wf.fireworks)
    # jobflow's store_inputs jobs (the volume check that replaced itself) name the job they
    # stand for: the projection into the Fireworks' spec works on a MongoDB server too
    names = {fw.name for fw in wf.fireworks}
    stores = [fw for fw in wf.fireworks if fw.name == "store_inputs"]
    assert stores and all(fw.stores_output_of in names - {"store_inputs"} for fw in stores)
    assert all(fw.stores_output_of is None for fw in wf.fireworks if fw.name != "store_inputs")


def _wait_for(predicate, timeout: float, what: str, setup: Setup):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}\n{setup.logs()}")


def _running_ramp(lp):
    """(fw_id, launch folder) of mg-ramp-u9 once its VASP has started, else None."""
    fw = lp.fireworks.find_one({"name": "mg-ramp-u9", "state": "RUNNING"})
    if fw is None:
        return None
    launch = lp.launches.find_one({"launch_id": fw["launches"][-1]})
    started = Path(launch["launch_dir"]) / "VASP_STARTED"
    return (fw["fw_id"], Path(launch["launch_dir"])) if started.exists() else None


def _workers_with_a_running_ramp(setup: Setup, delay: float):
    """Submit, start the workers (mg-ramp-u9 slowed down) and wait until its VASP runs;
    returns the LaunchPad, the ramp's fw_id and launch folder, and the worker running it."""
    setup.submit()
    for _ in range(N_KILL_WORKERS):
        setup.start_worker(delay=delay, slow_job="mg-ramp-u9")
    lp = setup.launchpad_obj()
    fw_id, launch_dir = _wait_for(lambda: _running_ramp(lp), 120, "mg-ramp-u9 to run", setup)
    victim = next(p for p in setup.workers if p.folder == launch_dir.parent)
    return lp, fw_id, launch_dir, victim


def test_killed_worker_is_detected_and_rerun_without_duplicates(setup):
    lp, fw_id, launch_dir, victim = _workers_with_a_running_ramp(setup, delay=4.0)
    os.killpg(victim.pid, signal.SIGKILL)  # mid-job: VASP has not finished
    killed_at = time.monotonic()
    victim.wait()
    assert (
        not (launch_dir / "vasprun.xml").exists() and not (launch_dir / "vasprun.xml.gz").exists()
    )
    # nothing runs any more but the dead launch (its children wait for it)
    _wait_for(
        lambda: [fw["fw_id"] for fw in lp.fireworks.find({"state": "RUNNING"})] == [fw_id],
        120,
        "the other workers to go idle",
        setup,
    )
    # its last ping is at most as old as the kill; live launches ping every second
    time.sleep(max(0.0, 5.0 - (time.monotonic() - killed_at)))
    lost_launches, lost_fws, _ = lp.detect_lostruns(expiration_secs=4, rerun=True)
    assert lost_fws == [fw_id] and len(lost_launches) == 1
    setup.start_worker()  # a fresh worker joins the survivors
    alive = [p for p in setup.workers if p is not victim]
    setup.workers = alive
    setup.wait_workers()
    _assert_completed_once(setup, N_FIREWORKS)
    fw = lp.fireworks.find_one({"fw_id": fw_id})
    assert len(fw["archived_launches"]) == 1  # the killed launch, kept for the record


def _rerun_lost_cli(setup: Setup, *args: str) -> subprocess.CompletedProcess:
    """``polaronflow rerun --lost`` as typed, with the workers' FireWorks config (1 s pings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FW_", "JOBFLOW_"))}
    env.update(HOME=str(setup.root), FW_CONFIG_FILE=str(setup.fw_config))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "polaronflow",
            "rerun",
            "--lost",
            "--launchpad",
            str(setup.launchpad),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_rerun_lost_spares_a_live_worker_and_reruns_a_dead_one(setup):
    """``polaronflow rerun --lost`` on MongoDB: a worker that stopped pinging but lives is left
    alone; once it is dead its job is rerun, and the campaign completes each job once.

    A live worker that stops pinging is what a MongoDB outage leaves: FireWorks' ping thread
    ends at the first ping that fails while the job runs on. Here the worker is frozen
    (SIGSTOP), which stops its pings the same way.
    """
    lp, fw_id, _, victim = _workers_with_a_running_ramp(setup, delay=5.0)
    os.killpg(victim.pid, signal.SIGSTOP)  # alive, silent
    _wait_for(
        lambda: [fw["fw_id"] for fw in lp.fireworks.find({"state": "RUNNING"})] == [fw_id],
        120,
        "the other worker to go idle",
        setup,
    )
    time.sleep(6)  # > --lost-after: its last ping is older than that now
    # an expiry within two ping intervals would take live launches for lost: refused
    short = _rerun_lost_cli(setup, "--lost-after", "1")
    assert short.returncode == 2 and "two FireWorks ping intervals" in short.stderr, short
    spared = _rerun_lost_cli(setup, "--lost-after", "4", "--json")
    assert spared.returncode == 0, spared.stderr
    result = json.loads(spared.stdout)
    assert result["rerun"] == {} and result["alive"] == {str(fw_id): "mg-ramp-u9"}, result
    assert lp.fireworks.find_one({"fw_id": fw_id})["state"] == "RUNNING"

    os.killpg(victim.pid, signal.SIGKILL)  # now dead, mid-job (VASP never finished)
    victim.wait()
    time.sleep(1)
    rerun = _rerun_lost_cli(setup, "--lost-after", "4", "--json")
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads(rerun.stdout)
    assert result["rerun"] == {str(fw_id): "mg-ramp-u9"} and result["alive"] == {}, result
    setup.start_worker(delay=0.0)  # joins the surviving worker
    setup.workers = [p for p in setup.workers if p is not victim]
    setup.wait_workers()
    _assert_completed_once(setup, N_FIREWORKS)
    fw = lp.fireworks.find_one({"fw_id": fw_id})
    (archived,) = fw["archived_launches"]  # the killed launch, kept for the record, FIZZLED
    assert lp.launches.find_one({"launch_id": archived})["state"] == "FIZZLED"


def test_server_restart_mid_campaign_loses_nothing(secantusd, tmp_path):
    """The server stops and comes back on the same storage while 2 workers hold jobs.

    The workers are frozen (SIGSTOP) before the server stops and thawed after it is back, so
    no request is in flight at the stop: every request sent before the freeze has its reply
    in the worker's socket (FireWorks' documents here are < 30 kB). Two failures are kept out
    that way, both seen with the workers left running:

    - SecantusDB 0.7.0b3 (a single-node replica set to drivers, so pymongo retries a write
      once when its reply is lost) forgets which retryable writes it executed when it
      restarts, and its stop drops the replies of writes in progress after they commit: such
      a write is retried after the restart and runs a second time
      (``tools/secantus_retry_repro.py``). Run twice, FireWorks' checkout reserves a second
      Firework and leaves the first RESERVED with no launch, and its workflow lock
      (``WFLock``) finds the lock the worker itself took: it waits 5 minutes, gives up and
      leaves the workflow locked (the workers then time out).
    - A write that fails halfway through FireWorks' bookkeeping (no transaction) can leave a
      finished job FIZZLED with its child already READY or run; rerunning it runs it again
      (``tools/fireworks_lost_write_repro.py``).

    After the thaw the first request meets a dead pooled connection ("connection pool
    paused"); it was never sent, and pymongo's one retry sends it to the restarted server. A
    standalone server (no retryable writes) fails that write in the worker instead (1 in 8
    runs). What this test holds is persistence and reconnection, exactly: each job
    completed once, no rerun; docs/workflows.md says what to do after an outage that caught
    a worker mid-write.
    """
    sys.path.insert(0, str(REPO / "tools"))
    from test_mongo import start_server

    storage = tmp_path / "mongo-data"
    server, port = start_server(secantusd, storage)
    setup = Setup(tmp_path, "127.0.0.1", port, "pf_restart")
    try:
        res = setup.submit()
        for _ in range(2):
            setup.start_worker(delay=1.0)
        lp = setup.launchpad_obj()
        _wait_for(
            lambda: lp.fireworks.count_documents({"state": "COMPLETED"}) >= 3,
            120,
            "3 completed jobs",
            setup,
        )
        for proc in setup.workers:
            os.killpg(proc.pid, signal.SIGSTOP)
        time.sleep(1.0)  # a request sent just before the freeze is answered (reply buffered)
        before_completed = {
            fw["fw_id"] for fw in lp.fireworks.find({"state": "COMPLETED"}, {"fw_id": 1})
        }
        before_running = lp.fireworks.count_documents({"state": "RUNNING"})
        before_outputs = set(setup.output_counts())
        assert len(before_completed) < N_FIREWORKS  # the restart happens mid-campaign
        _stop(server)
        time.sleep(2)
        server = _restart(start_server, secantusd, storage, port)
        lp = setup.launchpad_obj()
        # nothing submitted or finished before the restart is lost
        # (the unit cell's restart may already have added Fireworks: those come on top)
        assert set(res.fw_ids) <= {fw["fw_id"] for fw in lp.fireworks.find({}, {"fw_id": 1})}
        after = {fw["fw_id"] for fw in lp.fireworks.find({"state": "COMPLETED"}, {"fw_id": 1})}
        assert after == before_completed
        assert lp.fireworks.count_documents({"state": "RUNNING"}) == before_running
        assert set(setup.output_counts()) == before_outputs
        for proc in setup.workers:
            os.killpg(proc.pid, signal.SIGCONT)
        # the workers' pooled connections are dead: pymongo opens new ones and carries on
        setup.wait_workers(timeout=240)
        assert [p.returncode for p in setup.workers] == [0, 0], setup.logs()
        _assert_completed_once(setup, N_FIREWORKS)
    finally:
        for proc in setup.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGCONT)
        setup.stop_workers()
        server.terminate()
        server.wait(timeout=30)


def _stop(server: subprocess.Popen) -> None:
    """Stop the server (SIGTERM: it checkpoints and closes its storage).

    SecantusDB's stop sometimes never finishes (2 of about 40 stops here, with clients frozen
    or running: every thread of the server waiting on a lock, nothing in its log): it is
    then killed after 30 s. A kill loses acknowledged writes of the last moment (measured: 7
    of 300 inserts made just before it; none with 1 s between), but the workers are frozen
    and nothing has been written for 30 s by then; the checks after the restart would see it.
    """
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=30)


def _restart(start_server, executable: str, storage: Path, port: int):
    # the workers know this port; it can stay busy for a moment after the old server exits
    for attempt in range(10):
        try:
            return start_server(executable, storage, port=port)[0]
        except RuntimeError:
            if attempt == 9:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")
