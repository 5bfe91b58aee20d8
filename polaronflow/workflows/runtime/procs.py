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
import time

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


def set_subreaper(on: bool = True) -> bool:
    """Make this process adopt orphaned descendants (a dead worker's VASP) (Linux)."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1 if on else 0)


def descendant_groups(pid: int) -> set[tuple[int, float]]:
    """Process groups (id, leader start time) of ``pid``'s descendants outside its own group."""
    import psutil

    try:
        own = os.getpgid(pid)
        kids = psutil.Process(pid).children(recursive=True)
    except (ProcessLookupError, psutil.Error):
        return set()
    groups = set()
    for kid in kids:
        with contextlib.suppress(ProcessLookupError, psutil.Error):
            pgid = os.getpgid(kid.pid)
            if pgid != own:
                groups.add((pgid, psutil.Process(pgid).create_time()))
    return groups


def kill_groups(groups: set[tuple[int, float]] | list, grace: float = 1.0) -> list[int]:
    """SIGTERM, then after ``grace`` seconds SIGKILL, the process groups still alive.

    A group is only signalled while its leader is the process recorded (same start time), so
    a reused id is never hit. Returns the group ids signalled.
    """
    import psutil

    def alive(pgid: int, ctime: float) -> bool:
        try:
            return psutil.Process(pgid).create_time() == ctime
        except psutil.Error:
            # the leader is gone; members may live on: still a group while any member has it
            return any(_in_group(p, pgid) for p in psutil.pids())

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
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # zombies still count for killpg: reap ours
    return True


def reap_children(exclude: set[int] | None = None) -> None:
    """Collect finished children that are not ``exclude`` (orphans adopted as subreaper)."""
    import psutil

    exclude = exclude or set()
    with contextlib.suppress(psutil.Error):
        for kid in psutil.Process().children():
            if kid.pid in exclude:
                continue
            with contextlib.suppress(ChildProcessError, OSError, psutil.Error):
                if kid.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(kid.pid, os.WNOHANG)


def kill_descendants_and_exit(code: int = 143) -> None:
    """Signal handler body for a worker: take its VASP process groups down, then exit now.

    ``os._exit`` skips FireWorks' own exception handling, so the job is not marked FIZZLED:
    the launcher resets it to READY.
    """
    with contextlib.suppress(Exception):
        kill_groups(descendant_groups(os.getpid()), grace=1.0)
    os._exit(code)
