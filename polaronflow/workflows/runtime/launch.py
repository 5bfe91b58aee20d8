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

if TYPE_CHECKING:
    from fireworks import FWorker, LaunchPad

#: Seconds a worker waits before looking for work again while other jobs run.
DEFAULT_SLEEP = 0.5

_ACTIVE = ["READY", "RESERVED", "RUNNING"]


class LaunchError(PolaronflowError):
    """A worker process died instead of finishing (its job stays RUNNING; rerun it)."""

    exit_code = 1  # a failed run, not bad input


class LaunchRecord(BaseModel):
    """One Firework after :func:`launch_embedded`."""

    fw_id: int = Field(description="FireWorks id.")
    name: str = Field(description="Firework (job) name.")
    state: str = Field(description="FireWorks state (COMPLETED, FIZZLED, WAITING, ...).")
    worker: str | None = Field(None, description="FWorker name of its latest launch.")
    launch_dir: str | None = Field(None, description="Folder its latest launch ran in.")
    seconds: float | None = Field(None, description="Run time of its latest launch (s).")
    time_start: str | None = Field(None, description="Start of its latest launch (UTC).")


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
        description="FireWorks ids found RUNNING/RESERVED from an earlier launch and left so "
        "(lost launches; ``rerun_running`` runs them again).",
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
) -> None:
    """A worker process: FireWorks' rapidfire on the shared LaunchPad until no work is left."""
    from fireworks import FWorker
    from fireworks.core.rocket_launcher import rapidfire

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
        stale = sorted(lp.get_fw_ids({"state": {"$in": ["RUNNING", "RESERVED"]}}))
        rerun, lost = (stale, []) if rerun_running else ([], stale)
        for fw_id in rerun:
            lp.rerun_fw(fw_id)
        lock = threading.RLock()
        undo = _serialise(lp, lock)
        server_cls = type("_LaunchPadServer", (BaseManager,), {})
        server_cls.register("LaunchPad", callable=lambda: lp)
        authkey = os.urandom(32)
        server = server_cls(address=("127.0.0.1", 0), authkey=authkey).get_server()
        stop_all = ctx.Event()
        procs = []
        for i in range(1, workers + 1):
            spec = base.to_dict()
            spec["name"] = f"{base.name}-{i}"
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
                        lost,
                    ),
                    name=f"polaronflow-worker-{i}",
                )
            )
        # Workers are forked before the server thread starts (no thread is copied into them);
        # their connections wait in the listen queue until it does.
        for p in procs:
            p.start()
        stop = threading.Event()
        server.stop_event = stop  # what the stdlib's serve_forever() would set
        thread = threading.Thread(target=_serve, args=(server, stop), daemon=True)
        thread.start()
        died: dict[str, int] = {}
        interrupted = False
        try:
            _watch(lp, lock, procs, progress, stop_all, died)
        except KeyboardInterrupt:
            # Save what finished: workers that got the signal too die (their jobs stay
            # RUNNING); the others finish the jobs they are running, then stop.
            interrupted = True
            stop_all.set()
        finally:
            for p in procs:
                p.join()
            _stop_server(server, stop, thread, authkey)
            undo()
        records = _records(lp)
    if interrupted:
        raise LaunchError(
            f"interrupted; the LaunchPad in {project} was saved with every finished job; jobs "
            "that were running show as RUNNING: run `polaronflow launch --rerun-running`"
        )
    if died:
        raise LaunchError(
            "worker process(es) "
            + ", ".join(f"{name} (exit code {code})" for name, code in died.items())
            + " died; the launches they held stay RUNNING (see `polaronflow status`; "
            f"`polaronflow launch --rerun-running` runs them again); the LaunchPad in {project} "
            "was saved"
        )
    return LaunchResult(
        workers=workers,
        launch_dir=str(folder),
        seconds=time.monotonic() - start,
        records=records,
        rerun=rerun,
        left_running=lost,
    )


def _watch(lp, lock, procs, progress, stop_all, died: dict[str, int]) -> None:
    """Wait for the workers; report finished Fireworks and save the LaunchPad as they finish
    (``polaronflow status`` reads those saves); stop the others when a worker dies."""
    seen: set[int] = set()
    checkpoint = getattr(lp, "polaronflow_checkpoint", None)
    while True:
        alive = [p for p in procs if p.is_alive()]
        for p in procs:
            if not p.is_alive() and p.exitcode not in (0, None) and p.name not in died:
                died[p.name] = p.exitcode
                stop_all.set()  # the others finish the jobs ready now, then stop
        with lock:
            total = lp.fireworks.count_documents({})
            done = list(
                lp.fireworks.find(
                    {"state": {"$in": ["COMPLETED", "FIZZLED"]}}, {"fw_id": 1, "name": 1}
                )
            )
            new = sorted((d for d in done if d["fw_id"] not in seen), key=lambda d: d["fw_id"])
            if new and checkpoint is not None:
                checkpoint()
        for fw in new:
            seen.add(fw["fw_id"])
            if progress is not None:
                progress(len(seen), total, fw.get("name", ""))
        if not alive:
            return
        time.sleep(0.25)
