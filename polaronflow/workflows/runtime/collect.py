"""Gather a finished campaign's run folders from its JobStore: ``RUNS/<job name>``.

Every atomate2 VASP job stores a task document whose ``dir_name`` is the folder it ran in.
:func:`collect_runs` makes one symlink per job name in a destination folder — the layout
``polaronflow reproduce`` and ``polaronflow analyze`` read — choosing the latest completed run
when a job ran more than once (a rerun after a lost worker, a resubmission).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from polaronflow.errors import InputError
from polaronflow.fileio import staged_directory
from polaronflow.workflows.campaign.analysis_job import link_runs, local_path

if TYPE_CHECKING:
    from jobflow import JobStore


def run_folders(store: JobStore) -> dict[str, str]:
    """Job name → run folder of its latest completed output that has a ``dir_name``."""
    store.connect()
    latest: dict[str, tuple[str, str]] = {}
    for doc in store.query(
        {"output.dir_name": {"$exists": True}},
        properties=["name", "output.dir_name", "completed_at"],
    ):
        name = doc.get("name")
        dir_name = (doc.get("output") or {}).get("dir_name")
        if not name or not dir_name:
            continue
        stamp = str(doc.get("completed_at") or "")
        if name not in latest or stamp >= latest[name][0]:
            latest[name] = (stamp, dir_name)
    return {name: dir_name for name, (_, dir_name) in latest.items()}


def collect_runs(store: JobStore, dest: str | Path, force: bool = False) -> dict[str, Path]:
    """Link every finished job's run folder as ``dest/<job name>``.

    Parameters
    ----------
    store
        The campaign's JobStore (embedded or MongoDB).
    dest
        Folder to create (replaced only with ``force``).
    force
        Replace a non-empty ``dest``.

    Returns
    -------
    dict
        Job name → run folder linked.

    Raises
    ------
    InputError
        No finished runs in the store, or run folders that are not on this machine.
    """
    folders = run_folders(store)
    if not folders:
        raise InputError("the JobStore holds no finished VASP runs (nothing to collect)")
    missing = [n for n, d in folders.items() if not (local_path(d) or Path()).is_dir()]
    if len(missing) == len(folders):
        raise InputError(
            f"none of the {len(folders)} run folders in the JobStore exist on this machine "
            f"(e.g. {folders[missing[0]]}); run 'collect' where the runs are"
        )
    with staged_directory(dest, overwrite=force) as stage:
        linked = link_runs(folders, stage)
    return linked
