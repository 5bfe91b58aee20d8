"""Run the embedded LaunchPad's jobs here with FireWorks rockets, in one or more worker processes.

FireWorks' ``rlaunch`` cannot use the embedded store safely: the store is a mongomock database
kept in one JSON file, and a second process would work on its own stale copy
(:mod:`polaronflow.workflows.runtime.submit`). :func:`launch_embedded` therefore opens the LaunchPad
once, under the project's file lock, and shares that one LaunchPad object with ``workers``
forked processes through a :class:`multiprocessing.managers.BaseManager` server — the design of
FireWorks' own multi-process launcher (``rlaunch multi``, ``DataServer``), except that the
server runs as a thread of this process so the LaunchPad is saved here, atomically, when the
workers are done. Every LaunchPad call of every worker goes through one lock (mongomock is not
thread-safe: two workers must never reserve the same Firework).

Each worker runs FireWorks' ``rapidfire`` (Rocket → jobflow ``JobFireTask`` → atomate2 →
custodian → ``VASP_CMD``) in ``launch_dir/launcher_*`` folders, as ``rlaunch rapidfire`` would,
under its own FWorker name (``<name>-1``, ``<name>-2``, …; stored with every launch). A worker
whose ``rapidfire`` finds nothing to do waits while another worker's job is still running
(that job may add work, e.g. the k-point convergence loop) and stops when no Firework is
READY, RESERVED or RUNNING. Job outputs go to the JobStore each Firework names (the embedded
montydb store: SQLite, safe for concurrent writers).

Worker processes are forked (they inherit this process's imports and settings), so this runs
where ``fork`` exists (Linux, macOS). For many workers over many nodes use MongoDB and
FireWorks' own launchers.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from multiprocessing.managers import BaseManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from polaronflow.errors import ConfigError, InputError, PolaronflowError
from polaronflow.workflows.runtime import procs as _procs

if TYPE_CHECKING:
    from fireworks import FWorker, LaunchPad

#: Seconds a worker waits before looking for work again while other jobs run.
DEFAULT_SLEEP = 0.5

_ACTIVE = ["READY", "RESERVED", "RUNNING"]


class LaunchError(PolaronflowError):
    """A worker process died, or the launch was interrupted (its jobs are READY again)."""

    exit_code = 1  # a failed run, not bad input

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class LaunchRecord(BaseModel):
    """One Firework after :func:`launch_embedded`."""

    fw_id: int = Field(description="FireWorks id.")
    name: str = Field(description="Firework (job) name.")
    state: str = Field(description="FireWorks state (COMPLETED, FIZZLED, WAITING, ...).")
    worker: str | None = Field(None, description="FWorker name of its latest launch.")
    launch_dir: str | None = Field(None, description="Folder its latest launch ran in.")
    seconds: float | None = Field(None, description="Run time of its latest launch (s).")
    time_start: str | None = Field(None, description="Start of its latest launch (UTC).")
    launch_id: int | None = Field(None, description="FireWorks id of its latest launch.")


class LaunchResult(BaseModel):
    """What :func:`launch_embedded` ran."""

    workers: int = Field(description="Worker processes used.")
    launch_dir: str = Field(description="Folder holding the launcher_* run folders.")
    seconds: float = Field(description="Wall time (s).")
    records: list[LaunchRecord] = Field(
        description="Every Firework on the LaunchPad: launched ones in start order, then the rest."
    )
    rerun: list[int] = Field(
        default_factory=list,
        description="FireWorks ids found RUNNING/RESERVED from an earlier launch and run again.",
    )
    left_running: list[int] = Field(
        default_factory=list,
        description="FireWorks ids found RUNNING/RESERVED from an earlier launch that this "
        "launch cannot tell lost (another host, a live process, no record) and left so "
        "(``rerun_running`` runs them again).",
    )
    fizzled: list[int] = Field(
        default_factory=list, description="FireWorks ids this launch ran that FIZZLED."
    )
    ran: list[int] = Field(
        default_factory=list,
        description="FireWorks ids this launch ran (the others were done, waiting on a failed "
        "job, or belong to campaigns that cannot go on).",
    )

    def counts(self) -> dict[str, int]:
        """Number of Fireworks per state."""
        return dict(sorted(Counter(r.state for r in self.records).items()))


def _serialise(lp: LaunchPad, lock: threading.RLock) -> Callable[[], None]:
    """Make every public method of ``lp`` take ``lock``; returns the function that undoes it."""
    import inspect

    # bound methods only: mongomock collections (lp.fireworks, ...) are callable too
    names = [
        name
        for name in dir(lp)
        if not name.startswith("_") and inspect.ismethod(getattr(lp, name, None))
    ]

    def locked(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        call.__name__ = getattr(method, "__name__", "call")
        return call

    for name in names:
        setattr(lp, name, locked(getattr(lp, name)))

    def undo() -> None:
        for name in names:
            lp.__dict__.pop(name, None)

    return undo


def _serve(server: Any, stop: threading.Event) -> None:
    """Accept worker connections until ``stop`` (one thread per connection, as the stdlib does)."""
    while True:
        try:
            conn = server.listener.accept()
        except OSError:
            if stop.is_set():
                return
            continue
        if stop.is_set():
            conn.close()
            return
        threading.Thread(target=server.handle_request, args=(conn,), daemon=True).start()


def _stop_server(server: Any, stop: threading.Event, thread: threading.Thread, authkey: bytes):
    from multiprocessing.connection import Client

    stop.set()
    try:  # wake the accept() call up; the server closes this connection straight away
        Client(server.address, authkey=authkey).close()
    except (OSError, EOFError):
        pass
    thread.join(timeout=5)
    server.listener.close()


def _worker(
    address: tuple[str, int],
    authkey: bytes,
    fworker: dict[str, Any],
    launch_dir: str,
    sleep: float,
    strm_lvl: str,
    stop: Any,
    lost: list[int],
    project: str,
    parent_pid: int,
    lifeline: int,
    foreign_fds: list[int],
) -> None:
    """A worker process: FireWorks' rapidfire on the shared LaunchPad until no work is left."""
    import signal

    from fireworks import FWorker
    from fireworks.core.rocket_launcher import rapidfire

    from polaronflow.workflows.runtime import procs

    # Die with the launcher (kill -9 included) and take custodian's VASP session down too;
    # Ctrl-C is the launcher's to handle (it stops the workers with SIGTERM): a worker in
    # its own process group does not get the terminal's SIGINT, so custodian never marks the
    # job FIZZLED for it.
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: procs.kill_descendants_and_exit(143))
    procs.die_with_parent(parent_pid, signal.SIGTERM)
    # A signal may be delivered to any thread (FireWorks' ping thread, ...) and then waits for
    # the main thread, blocked in custodian's wait for VASP. The lifeline does not: a pipe whose
    # write end only the launcher holds reads EOF the moment the launcher dies (kill -9
    # included) or closes it to stop this worker.
    for fd in foreign_fds:
        os.close(fd)
    procs.watch_lifeline(lifeline)
    # The launcher's stdout is for results (``--json``): FireWorks', jobflow's and pymatgen's
    # log lines and warnings go to this worker's log file in the launch folder.
    log = os.open(
        os.path.join(launch_dir, f"{fworker['name']}.log"),
        os.O_WRONLY | os.O_CREAT | os.O_APPEND,
        0o644,
    )
    for fd in (1, 2):
        os.dup2(log, fd)
    os.close(log)
    import sys

    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    import faulthandler

    # `kill -USR1 <worker>` writes every thread's stack to the worker's log
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    # Fireworks carry no JobStore (no credentials in them): jobflow's JobFireTask then writes
    # to SETTINGS.JOB_STORE, which for the embedded store is the project's.
    import jobflow

    from polaronflow.workflows.runtime.submit import embedded_jobstore

    jobflow.SETTINGS.JOB_STORE = embedded_jobstore(project)
    # Everything inherited from the parent (modules, the campaign) is long-lived: keep the
    # cyclic garbage collector from re-scanning it while task documents are parsed.
    gc.freeze()
    client = type("_LaunchPadClient", (BaseManager,), {})
    client.register("LaunchPad")
    manager = client(address=address, authkey=authkey)
    manager.connect()
    lp = manager.LaunchPad()
    worker = FWorker.from_dict(fworker)
    os.chdir(launch_dir)
    while True:
        # One round: every job that is READY now, then (if more may come) one sleep.
        rapidfire(
            lp,
            worker,
            m_dir=launch_dir,
            nlaunches=0,
            max_loops=1,
            sleep_time=sleep,
            strm_lvl=strm_lvl,
        )
        # A job running in another worker may still add work (dynamic Flows such as the k-point
        # loop): go on until nothing is ready, reserved or running (launches lost before this
        # launch started do not count), or the launcher says stop.
        active = {"state": {"$in": _ACTIVE}, "fw_id": {"$nin": lost}}
        if stop.is_set() or not lp.get_fw_ids(active, limit=1):
            return
        time.sleep(sleep)


def _records(lp: LaunchPad) -> list[LaunchRecord]:
    launches = {
        d["launch_id"]: d
        for d in lp.launches.find(
            {},
            {
                "launch_id": 1,
                "launch_dir": 1,
                "fworker.name": 1,
                "runtime_secs": 1,
                "time_start": 1,
            },
        )
    }
    records = []
    for fw in lp.fireworks.find({}, {"fw_id": 1, "name": 1, "state": 1, "launches": 1}):
        latest = launches.get(max(fw.get("launches") or [-1]), {})
        start = latest.get("time_start")
        records.append(
            LaunchRecord(
                fw_id=fw["fw_id"],
                name=fw.get("name", ""),
                state=fw["state"],
                worker=(latest.get("fworker") or {}).get("name"),
                launch_dir=latest.get("launch_dir"),
                seconds=latest.get("runtime_secs"),
                time_start=str(start) if start is not None else None,
                launch_id=latest.get("launch_id"),
            )
        )
    records.sort(key=lambda r: (r.time_start is None, r.time_start or "", r.fw_id))
    return records


def launch_embedded(
    project_dir: str | Path | None = None,
    workers: int = 1,
    launch_dir: str | Path | None = None,
    fworker: FWorker | None = None,
    sleep: float = DEFAULT_SLEEP,
    progress: Callable[[int, int, str], None] | None = None,
    lock_timeout: float | None = None,
    strm_lvl: str = "ERROR",
    rerun_running: bool = False,
) -> LaunchResult:
    """Run every job of the embedded LaunchPad that can run, with ``workers`` processes.

    Parameters
    ----------
    project_dir
        The project folder of the embedded store; default ``settings.project_dir``.
    workers
        Worker processes (≥ 1); each runs one job at a time.
    launch_dir
        Folder for the ``launcher_*`` run folders; default ``project_dir/launches``.
    fworker
        FWorker whose category/query/env the workers use; worker *i* is named
        ``<fworker.name>-<i>``. Default ``FWorker(name="polaronflow")``.
    sleep
        Seconds between looks for new work while other jobs run.
    progress
        Called as ``progress(finished, total, name)`` whenever a Firework finishes
        (COMPLETED or FIZZLED); ``total`` grows when dynamic jobs are added.
    lock_timeout
        Seconds to wait for the project's lock; default ``settings.lock_timeout``.
    strm_lvl
        FireWorks' log level on the screen.
    rerun_running
        Reset Fireworks left RUNNING or RESERVED by an earlier launch that did not finish (a
        dead worker, Ctrl-C, a reboot) to run again. Nothing else runs jobs on the embedded
        store while this holds its lock, so such launches are lost; without this flag they are
        only listed (``LaunchResult.left_running``).

    Returns
    -------
    LaunchResult
        Every Firework's state, worker, run folder and run time.

    Raises
    ------
    InputError
        ``workers`` < 1 or ``sleep`` <= 0.
    ConfigError
        The project is locked by another process, its LaunchPad file is unreadable, or this
        platform cannot fork.
    LaunchError
        A worker process died, or the launch was interrupted (Ctrl-C). The LaunchPad is still
        saved with every job that finished; the jobs that were running show as RUNNING
        (``rerun_running`` runs them again).
    """
    from fireworks import FWorker

    from polaronflow.workflows.runtime.submit import (
        _settings,
        embedded_jobstore,
        embedded_launchpad,
    )

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a whole number >= 1, got {workers!r}")
    if not sleep > 0:  # FireWorks' rapidfire reads 0 as "use the default" (60 s)
        raise InputError(f"sleep must be > 0 s, got {sleep!r}")
    if "fork" not in multiprocessing.get_all_start_methods():
        raise ConfigError(
            "launching on the embedded LaunchPad needs fork() (Linux, macOS); use a MongoDB "
            "LaunchPad and FireWorks' rlaunch on this platform"
        )
    project = Path(project_dir if project_dir is not None else _settings(None).project_dir)
    project = project.expanduser().resolve()
    folder = Path(launch_dir).expanduser().resolve() if launch_dir else project / "launches"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create launch folder {folder}: {exc.strerror}") from exc
    base = fworker or FWorker(name="polaronflow")
    start = time.monotonic()
    ctx = multiprocessing.get_context("fork")
    with embedded_launchpad(project, lock_timeout) as lp:
        # the project's JobStore exists before the workers open it side by side
        embedded_jobstore(project).connect()
        before = {d["launch_id"] for d in lp.launches.find({}, {"launch_id": 1})}
        done_before = set(lp.get_fw_ids({"state": {"$in": ["COMPLETED", "FIZZLED"]}}))
        stale = sorted(lp.get_fw_ids({"state": {"$in": ["RUNNING", "RESERVED"]}}))
        lost_ids, unknown = _classify_stale(lp, stale)
        rerun = sorted(lost_ids + (unknown if rerun_running else []))
        left = [] if rerun_running else unknown
        for fw_id in rerun:
            _kill_recorded(lp, fw_id)
            lp.rerun_fw(fw_id)
        if rerun:
            lp.polaronflow_checkpoint()
        lock = threading.RLock()
        undo = _serialise(lp, lock)
        server_cls = type("_LaunchPadServer", (BaseManager,), {})
        server_cls.register("LaunchPad", callable=lambda: lp)
        authkey = os.urandom(32)
        server = server_cls(address=("127.0.0.1", 0), authkey=authkey).get_server()
        stop_all = ctx.Event()
        names = [f"{base.name}-{i}" for i in range(1, workers + 1)]
        lifelines = [os.pipe() for _ in names]
        procs = []
        for name, (read_end, _) in zip(names, lifelines, strict=True):
            spec = base.to_dict()
            spec["name"] = name
            procs.append(
                ctx.Process(
                    target=_worker,
                    args=(
                        server.address,
                        authkey,
                        spec,
                        str(folder),
                        sleep,
                        strm_lvl,
                        stop_all,
                        left,
                        str(project),
                        os.getpid(),
                        read_end,
                        [fd for pair in lifelines for fd in pair if fd != read_end],
                    ),
                    name=name,
                )
            )
        # A dead worker's VASP (custodian gives it a session of its own) is adopted by this
        # process, which kills it before the job is reported or run again.
        reaper = _procs.set_subreaper(True)
        # Workers are forked before the server thread starts (no thread is copied into them);
        # their connections wait in the listen queue until it does.
        for p in procs:
            p.start()
        for read_end, _ in lifelines:
            os.close(read_end)
        stop = threading.Event()
        server.stop_event = stop  # what the stdlib's serve_forever() would set
        thread = threading.Thread(target=_serve, args=(server, stop), daemon=True)
        thread.start()
        watch = _Watch(lp, lock, procs, progress, stop_all, before, done_before)
        watch.lifelines = {p.name: w for p, (_, w) in zip(procs, lifelines, strict=True)}
        interrupted: str | None = None
        with _terminate_as_interrupt() as signalled:
            try:
                watch.run()
            except KeyboardInterrupt:
                interrupted = signalled.get("name", "Ctrl-C")
                # Stop now: every worker kills its VASP and exits; its job goes back to READY.
                stop_all.set()
                watch.stop_workers()
            finally:
                for p in procs:
                    p.join()
                watch.reset_held()
                watch.cut_lifelines()
                _stop_server(server, stop, thread, authkey)
                undo()
                if reaper:
                    _procs.reap_children()
                    _procs.set_subreaper(False)
        records = _records(lp)
    reset = sorted(watch.reset)
    if interrupted:
        raise LaunchError(
            f"interrupted ({interrupted}); the LaunchPad in {project} was saved"
            + (
                f"; the running jobs (fw_ids {reset}) were stopped and are READY to run again"
                if reset
                else ""
            ),
            exit_code=130,
        )
    if watch.died:
        raise LaunchError(
            "worker process(es) "
            + ", ".join(f"{name} (exit code {code})" for name, code in watch.died.items())
            + f" died (logs: {folder}/<worker>.log); their VASP processes were killed"
            + (f" and their jobs (fw_ids {reset}) reset to READY" if reset else "")
            + f"; the LaunchPad in {project} was saved: `polaronflow launch` runs what is left"
        )
    ours = {r.fw_id for r in records if r.launch_id is not None and r.launch_id not in before}
    return LaunchResult(
        workers=workers,
        launch_dir=str(folder),
        seconds=time.monotonic() - start,
        records=records,
        rerun=rerun,
        left_running=left,
        fizzled=sorted(r.fw_id for r in records if r.fw_id in ours and r.state == "FIZZLED"),
        ran=sorted(ours),
    )


#: Collection of the embedded LaunchPad recording who runs each launch (host, PIDs, VASP
#: process groups), so that a later launch tells a live launch from a lost one.
CHECKOUTS = "polaronflow_checkouts"


def _alive(pid: int | None, ctime: float | None) -> bool:
    import psutil

    if pid is None:
        return False
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and (
            ctime is None or abs(proc.create_time() - ctime) < 0.01
        )
    except psutil.Error:
        return False


def _latest_launch(lp: LaunchPad, fw_id: int) -> int | None:
    fw = lp.fireworks.find_one({"fw_id": fw_id}, {"launches": 1}) or {}
    return max(fw.get("launches") or [-1]) if fw.get("launches") else None


def _classify_stale(lp: LaunchPad, stale: list[int]) -> tuple[list[int], list[int]]:
    """Split RUNNING/RESERVED Fireworks into lost ones and ones this host cannot judge.

    Lost: recorded by a launch on this host whose launcher and worker processes are gone.
    Anything else (another host, a live process, no record) is left alone.
    """
    import socket

    host = socket.gethostname()
    lost, unknown = [], []
    for fw_id in stale:
        rec = lp.db[CHECKOUTS].find_one({"launch_id": _latest_launch(lp, fw_id)})
        if (
            rec is not None
            and rec.get("host") == host
            and not _alive(rec.get("launcher_pid"), rec.get("launcher_ctime"))
            and not _alive(rec.get("worker_pid"), rec.get("worker_ctime"))
        ):
            lost.append(fw_id)
        else:
            unknown.append(fw_id)
    return lost, unknown


def _kill_recorded(lp: LaunchPad, fw_id: int) -> None:
    """Kill the VASP process groups recorded for a Firework's latest launch (this host only)."""
    import socket

    rec = lp.db[CHECKOUTS].find_one({"launch_id": _latest_launch(lp, fw_id)})
    if rec is not None and rec.get("host") == socket.gethostname():
        _procs.kill_groups({(int(g), float(t)) for g, t in rec.get("vasp_groups", [])})


class _terminate_as_interrupt:
    """SIGTERM (a scheduler's wall time, ``kill``) handled like Ctrl-C, in the main thread."""

    def __enter__(self) -> dict[str, str]:
        import signal

        self.info: dict[str, str] = {}
        self.old = None
        if threading.current_thread() is threading.main_thread():

            def handler(signum: int, frame: Any) -> None:
                self.info["name"] = "SIGTERM"
                raise KeyboardInterrupt

            self.old = signal.signal(signal.SIGTERM, handler)
        return self.info

    def __exit__(self, *exc: Any) -> None:
        import signal

        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)


class _Watch:
    """Wait for the workers; report and checkpoint as jobs start and finish.

    Every new launch is recorded in :data:`CHECKOUTS` with this host, the launcher's and the
    worker's PIDs and the VASP process groups seen under the worker, and saved at once (so a
    launch killed with -9 leaves RUNNING jobs a later launch can recognise as lost). A dead
    worker's VASP groups are killed and its jobs reset to READY before anything else happens.
    """

    def __init__(self, lp, lock, procs, progress, stop_all, before, done_before) -> None:
        import socket

        import psutil

        self.lp, self.lock, self.procs, self.progress = lp, lock, procs, progress
        self.stop_all, self.before = stop_all, before
        self.seen: set[int] = set(done_before)
        self.n_before = len(done_before)
        self.died: dict[str, int] = {}
        self.reset: set[int] = set()
        self.host = socket.gethostname()
        self.me = (os.getpid(), psutil.Process().create_time())
        self.pids = {p.name: p.pid for p in procs}
        self.ctimes: dict[str, float] = {}
        self.groups: dict[str, set[tuple[int, float]]] = {p.name: set() for p in procs}
        self.recorded: dict[int, str] = {}  # launch_id -> worker name
        self.handled: set[str] = set()

    def run(self) -> None:
        while True:
            alive = [p for p in self.procs if p.is_alive()]
            self._look()
            for p in self.procs:
                if not p.is_alive() and p.name not in self.handled:
                    self.handled.add(p.name)
                    if p.exitcode not in (0, None):
                        self.died[p.name] = p.exitcode
                        self.stop_all.set()  # the others finish the jobs ready now, then stop
                        self._bury(p.name)
            if not alive:
                self._look()
                return
            time.sleep(0.25)

    def _look(self) -> None:
        import psutil

        changed = False
        for p in self.procs:
            if p.name not in self.ctimes and p.pid is not None:
                try:
                    self.ctimes[p.name] = psutil.Process(p.pid).create_time()
                except psutil.Error:
                    self.ctimes[p.name] = 0.0
            if p.is_alive():
                groups = _procs.descendant_groups(p.pid)
                if not groups <= self.groups[p.name]:
                    self.groups[p.name] |= groups
                    changed = True
        with self.lock:
            lp = self.lp
            running = list(
                lp.launches.find(
                    {
                        "state": {"$in": ["RUNNING", "RESERVED"]},
                        "fworker.name": {"$in": list(self.pids)},
                    },
                    {"launch_id": 1, "fworker.name": 1},
                )
            )
            for launch in running:
                lid, name = launch["launch_id"], launch["fworker"]["name"]
                if lid in self.before:
                    continue
                if lid not in self.recorded:
                    self.recorded[lid] = name
                    changed = True
                if changed:
                    lp.db[CHECKOUTS].replace_one(
                        {"launch_id": lid},
                        {
                            "launch_id": lid,
                            "host": self.host,
                            "launcher_pid": self.me[0],
                            "launcher_ctime": self.me[1],
                            "worker": name,
                            "worker_pid": self.pids[name],
                            "worker_ctime": self.ctimes.get(name),
                            "vasp_groups": sorted(self.groups[name]),
                        },
                        upsert=True,
                    )
            total = lp.fireworks.count_documents({})
            done = list(
                lp.fireworks.find(
                    {"state": {"$in": ["COMPLETED", "FIZZLED"]}}, {"fw_id": 1, "name": 1}
                )
            )
            new = sorted((d for d in done if d["fw_id"] not in self.seen), key=lambda d: d["fw_id"])
            checkpoint = getattr(lp, "polaronflow_checkpoint", None)
            if (new or changed) and checkpoint is not None:
                checkpoint()
        for fw in new:
            self.seen.add(fw["fw_id"])
            if self.progress is not None:
                self.progress(
                    len(self.seen) - self.n_before, total - self.n_before, fw.get("name", "")
                )

    def _held(self, names: set[str]) -> list[int]:
        """Fireworks still RUNNING/RESERVED in launches of this launch's workers ``names``."""
        lids = [
            d["launch_id"]
            for d in self.lp.launches.find(
                {"state": {"$in": ["RUNNING", "RESERVED"]}, "fworker.name": {"$in": list(names)}},
                {"launch_id": 1},
            )
            if d["launch_id"] not in self.before
        ]
        return sorted(
            d["fw_id"]
            for d in self.lp.fireworks.find(
                {"launches": {"$in": lids}, "state": {"$in": ["RUNNING", "RESERVED"]}},
                {"fw_id": 1},
            )
        )

    def _bury(self, name: str) -> None:
        """A worker died: kill its VASP (recorded groups, and orphans adopted by this
        process), then put its jobs back to READY."""
        import psutil

        groups = set(self.groups[name])
        workers = set(self.pids.values())
        with contextlib.suppress(psutil.Error):
            for kid in psutil.Process().children():
                if kid.pid not in workers:
                    with contextlib.suppress(psutil.Error, OSError):
                        groups.add(
                            (os.getpgid(kid.pid), psutil.Process(os.getpgid(kid.pid)).create_time())
                        )
        _procs.kill_groups(groups)
        with self.lock:
            for fw_id in self._held({name}):
                self.lp.rerun_fw(fw_id)
                self.reset.add(fw_id)
            checkpoint = getattr(self.lp, "polaronflow_checkpoint", None)
            if checkpoint is not None:
                checkpoint()

    def cut_lifelines(self) -> None:
        """Close the write ends of the workers' lifelines (each worker then stops at once)."""
        for name, fd in list(getattr(self, "lifelines", {}).items()):
            with contextlib.suppress(OSError):
                os.close(fd)
            self.lifelines.pop(name)

    def stop_workers(self) -> None:
        """Stop every live worker now: freeze it (SIGSTOP: its job can neither go on nor
        report), kill its VASP process groups, then kill it. Its jobs stay RUNNING until
        :meth:`reset_held` puts them back to READY."""
        import signal

        live = [p for p in self.procs if p.is_alive()]
        for p in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGSTOP)
        for p in live:
            groups = self.groups[p.name] | _procs.descendant_groups(p.pid)
            _procs.kill_groups(groups, grace=1.0)
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
            p.join()
            self.handled.add(p.name)

    def reset_held(self) -> None:
        """After every worker is gone: jobs still held by them go back to READY."""
        with self.lock:
            held = self._held(set(self.pids))
            for fw_id in held:
                self.lp.rerun_fw(fw_id)
                self.reset.add(fw_id)
