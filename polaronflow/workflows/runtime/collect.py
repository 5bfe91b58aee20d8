"""Gather a finished campaign's run folders from its JobStore: ``RUNS/<job name>``.

Every atomate2 VASP job stores a task document whose ``dir_name`` is the folder it ran in.
:func:`collect_runs` makes one symlink per job name in a destination folder — the layout
``polaronflow reproduce`` and ``polaronflow analyze`` read — choosing the latest completed run
when a job ran more than once (a rerun after a lost worker, a resubmission).

One campaign at a time: the documents taken are those of the chosen campaign's jobs (their
uuids, read from the LaunchPad), so two campaigns sharing a JobStore are never mixed; without a
LaunchPad to tell them apart, a store holding one job name under two different jobs is refused.
Links are relative and named by job names checked as safe path components
(:func:`polaronflow.naming.check_safe_name`), so nothing is written outside ``RUNS``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from polaronflow.errors import InputError
from polaronflow.fileio import staged_directory
from polaronflow.naming import check_safe_name
from polaronflow.workflows.campaign.analysis_job import local_path

if TYPE_CHECKING:
    from jobflow import JobStore


def run_folders(store: JobStore, uuids: list[str] | None = None) -> dict[str, str]:
    """Job name → run folder of its latest completed output that has a ``dir_name``.

    Parameters
    ----------
    store
        The JobStore.
    uuids
        Only the outputs of these jobs (one campaign); None takes every document, and a job
        name found under two different job uuids (two campaigns) is then refused.

    Raises
    ------
    InputError
        A job name that is not a safe path component, or a mix of campaigns.
    """
    store.connect()
    latest: dict[str, tuple[str, str]] = {}
    owners: dict[str, set[str]] = {}
    criteria: dict = {"output.dir_name": {"$exists": True}}
    if uuids is not None:
        criteria["uuid"] = {"$in": list(uuids)}
    for doc in store.query(
        criteria, properties=["name", "uuid", "output.dir_name", "completed_at"]
    ):
        name = doc.get("name")
        owners.setdefault(str(name), set()).add(str(doc.get("uuid")))
        dir_name = (doc.get("output") or {}).get("dir_name")
        if not name or not dir_name:
            continue
        try:
            check_safe_name(name)
        except ValueError as exc:
            raise InputError(f"the JobStore holds an unsafe job name: {exc}") from None
        stamp = str(doc.get("completed_at") or "")
        if name not in latest or stamp >= latest[name][0]:
            latest[name] = (stamp, dir_name)
    mixed = sorted(n for n, u in owners.items() if len(u) > 1 and n in latest)
    if uuids is None and mixed:
        raise InputError(
            f"the JobStore holds more than one campaign (e.g. two '{mixed[0]}' jobs): name the "
            "LaunchPad (--launchpad) and the campaign (--campaign) so collect can tell them apart"
        )
    return {name: dir_name for name, (_, dir_name) in latest.items()}


def link_runs_relative(run_dirs: dict[str, str], dest: Path, final: Path) -> dict[str, Path]:
    """``dest/<name>`` → run folder as relative symlinks, valid once ``dest`` is at ``final``.

    Names are checked as safe path components (no separator, not ``..``): a link is always a
    direct child of ``dest``.
    """
    linked = {}
    base = final.resolve()
    for name, dir_name in sorted(run_dirs.items()):
        path = local_path(dir_name)
        if path is None or not path.is_dir():
            continue
        link = dest / check_safe_name(name)
        if link.resolve().parent != dest.resolve():  # belt and braces
            raise InputError(f"job name {name!r} would leave the RUNS folder")
        os.symlink(os.path.relpath(path.resolve(), base), link, target_is_directory=True)
        linked[name] = path
    return linked


def collect_runs(
    store: JobStore, dest: str | Path, force: bool = False, uuids: list[str] | None = None
) -> dict[str, Path]:
    """Link every finished job's run folder as ``dest/<job name>`` (relative links).

    Parameters
    ----------
    store
        The campaign's JobStore (embedded or MongoDB).
    dest
        Folder to create (replaced only with ``force``).
    force
        Replace a non-empty ``dest``.
    uuids
        The campaign's job uuids (:func:`campaign_uuids`); None takes the whole store and
        refuses a mix of campaigns.

    Returns
    -------
    dict
        Job name → run folder linked.

    Raises
    ------
    InputError
        No finished runs in the store, or run folders that are not on this machine.
    """
    folders = run_folders(store, uuids)
    if not folders:
        raise InputError("the JobStore holds no finished VASP runs (nothing to collect)")
    missing = [n for n, d in folders.items() if not (local_path(d) or Path()).is_dir()]
    if len(missing) == len(folders):
        raise InputError(
            f"none of the {len(folders)} run folders in the JobStore exist on this machine "
            f"(e.g. {folders[missing[0]]}); run 'collect' where the runs are"
        )
    with staged_directory(dest, overwrite=force) as stage:
        linked = link_runs_relative(folders, stage, Path(dest).absolute())
    return linked


def campaign_uuids(lp, fw_ids: list[int]) -> list[str]:
    """The jobflow job uuids of the Fireworks ``fw_ids`` (one campaign's jobs)."""
    uuids = []
    for d in lp.fireworks.find({"fw_id": {"$in": list(fw_ids)}}, {"spec._tasks": 1}):
        for task in (d.get("spec") or {}).get("_tasks") or []:
            job = task.get("job") if isinstance(task, dict) else None
            if isinstance(job, dict) and job.get("uuid"):
                uuids.append(job["uuid"])
    return uuids
