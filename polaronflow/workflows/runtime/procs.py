"""Process hygiene for launch workers: die with the parent, take VASP down with them.

custodian starts VASP in a session of its own (``start_new_session=True``), so neither a
signal to a worker nor the death of a worker reaches VASP. FireWorks and jobflow have no
mechanism for this (``rlaunch`` relies on the batch system killing the whole job), hence these
few Linux-specific helpers; elsewhere they do nothing and the caveat stands.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

import psutil  # imported here, never first inside a signal handler (two threads at once)

_STOPPING = threading.Lock()
_STOPPER: list[int] = []

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies (Linux).

    Exits at once when the parent is already gone (it died between fork and this call).
    """
    _prctl(_PR_SET_PDEATHSIG, int(sig))
    if os.getppid() != parent_pid:
        os._exit(1)


def watch_lifeline(fd: int) -> None:
    """Start a thread that kills this process's VASP groups and exits when ``fd`` reads EOF."""

    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(fd, 64):
                pass
        kill_descendants_and_exit(143)

    threading.Thread(target=watch, name="polaronflow-lifeline", daemon=True).start()


def set_subreaper(on: bool = True) -> bool:
    """Make this process adopt orphaned descendants (a dead worker's VASP) (Linux)."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1 if on else 0)


def descendant_groups(pid: int) -> set[tuple[int, float]]:
    """Process groups (id, leader start time) of ``pid``'s descendants outside its own group."""
    try:
        own = os.getpgid(pid)
        kids = psutil.Process(pid).children(recursive=True)
    except (ProcessLookupError, psutil.Error):
        return set()
    groups = set()
    for kid in kids:
        with contextlib.suppress(ProcessLookupError, psutil.Error):
            if kid.status() == psutil.STATUS_ZOMBIE:
                continue
            pgid = os.getpgid(kid.pid)
            if pgid != own:
                groups.add((pgid, psutil.Process(pgid).create_time()))
    return groups


def kill_groups(groups: set[tuple[int, float]] | list, grace: float = 1.0) -> list[int]:
    """SIGTERM, then after ``grace`` seconds SIGKILL, the process groups still alive.

    A group is only signalled while its leader is the process recorded (same start time), so
    a reused id is never hit. Returns the group ids signalled.
    """

    def alive(pgid: int, ctime: float) -> bool:
        try:
            leader = psutil.Process(pgid)
            if leader.create_time() == ctime and leader.status() != psutil.STATUS_ZOMBIE:
                return True
        except psutil.Error:
            pass
        # the leader is gone (or a zombie); members may live on
        return _group_exists(pgid)

    hit = []
    for pgid, ctime in groups:
        if alive(pgid, ctime):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGTERM)
                hit.append(pgid)
    deadline = time.monotonic() + grace
    while hit and time.monotonic() < deadline:
        reap_children()
        if not any(_group_exists(g) for g in hit):
            break
        time.sleep(0.05)
    for pgid in hit:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    reap_children()
    return hit


def _in_group(pid: int, pgid: int) -> bool:
    try:
        return os.getpgid(pid) == pgid
    except OSError:
        return False


def _group_exists(pgid: int) -> bool:
    """A live (not zombie) process is still in group ``pgid``."""
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
    return False


def reap_children(exclude: set[int] | None = None) -> None:
    """Collect finished children that are not ``exclude`` (orphans adopted as subreaper)."""
    exclude = exclude or set()
    with contextlib.suppress(psutil.Error):
        for kid in psutil.Process().children():
            if kid.pid in exclude:
                continue
            with contextlib.suppress(ChildProcessError, OSError, psutil.Error):
                if kid.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(kid.pid, os.WNOHANG)


def kill_descendants_and_exit(code: int = 143) -> None:
    """Take this worker's VASP process groups down, then exit now.

    Scans until two scans in a row find nothing, so a VASP the main thread was starting at that
    moment is caught too. ``os._exit`` skips FireWorks' own exception handling, so the job is
    not marked FIZZLED: the launcher puts it back to READY.
    """
    if _STOPPER and _STOPPER[0] == threading.get_ident():
        return  # a second signal inside the handler: the first one goes on
    if not _STOPPING.acquire(blocking=False):
        while True:  # the other thread (signal handler or lifeline) is stopping; it exits
            time.sleep(1)
    _STOPPER.append(threading.get_ident())
    quiet = 0
    try:
        while quiet < 2:
            groups = descendant_groups(os.getpid())
            if groups:
                quiet = 0
                os.write(
                    2, f"polaronflow worker {os.getpid()}: killing {sorted(groups)}\n".encode()
                )
                kill_groups(groups, grace=1.0)
            else:
                quiet += 1
                time.sleep(0.05)
    except Exception as exc:
        with contextlib.suppress(OSError):
            os.write(2, f"polaronflow worker {os.getpid()}: cannot stop VASP: {exc!r}\n".encode())
    os._exit(code)
