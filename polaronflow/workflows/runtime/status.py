"""What the campaigns on a LaunchPad are doing: job states, failure reasons, custodian fixes.

Read-only view of the configured LaunchPad (embedded or MongoDB, as for submission): per
workflow its fireworks with state, id and launch folder; for a failed one the reason FireWorks
recorded (the last line of the ``_exception`` traceback in the launch's stored data); for
every launch folder what custodian corrected (``custodian.json``, gzipped or not: the handler,
the errors it saw and the actions it took).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from fireworks import LaunchPad

    from polaronflow.settings import PolaronflowSettings


class CustodianCorrection(BaseModel):
    """One correction custodian made while running a job."""

    handler: str = Field(description="Class name of the custodian error handler.")
    errors: list[str] = Field(description="Errors the handler detected.")
    actions: list[str] = Field(
        description="What it changed, one compact JSON action per entry (INCAR tag sets, file "
        "copies, ...)."
    )


class FireworkStatus(BaseModel):
    """One job (Firework) of a workflow."""

    fw_id: int = Field(description="FireWorks id.")
    name: str = Field(description="Job name (e.g. mg-ramp-u9).")
    state: str = Field(
        description="FireWorks state: WAITING, READY, RUNNING, COMPLETED, FIZZLED..."
    )
    launch_dir: str | None = Field(description="Folder of the latest launch; None if never run.")
    n_launches: int = Field(description="Number of launches (reruns and archived ones included).")
    failure: str | None = Field(
        description="Why the latest launch failed (FireWorks' recorded exception), or None."
    )
    corrections: list[CustodianCorrection] = Field(
        description="custodian's corrections in the latest launch folder (custodian.json)."
    )
    skipped: str | None = Field(
        default=None,
        description="Why a COMPLETED job did no VASP run (a ramp step after its polarons "
        "delocalised: ``polaron_check.action == 'skipped'``), from the launch folder's "
        "polaron_check.json; None otherwise.",
    )
    stores_output_of: str | None = Field(
        default=None,
        description="For jobflow's ``store_inputs`` jobs: the name of the job they stand for. "
        "A job that replaces itself at run time (a volume or k-point check starting the next "
        "step) gets a ``store_inputs`` job with its uuid that stores the output of what "
        "replaced it; None for every other job.",
    )


class WorkflowStatus(BaseModel):
    """One workflow (one submitted campaign or Flow)."""

    name: str = Field(description="Workflow name.")
    state: str = Field(description="FireWorks' overall workflow state.")
    campaign_id: str | None = Field(
        description="The campaign fingerprint stored at submission (sha256 hex), if any."
    )
    counts: dict[str, int] = Field(description="Number of fireworks per state.")
    fireworks: list[FireworkStatus] = Field(description="The workflow's jobs, by FireWorks id.")


class CampaignStatus(BaseModel):
    """Every workflow on a LaunchPad."""

    launchpad: str = Field(
        description="The LaunchPad read (embedded file or LaunchPad file), or the jobflow-remote "
        "project whose queue was read."
    )
    runner: str = Field(
        default="fireworks",
        description="``fireworks`` or ``jobflow-remote``; with jobflow-remote each job's "
        "``fw_id`` is its DB id and ``launch_dir`` its run folder.",
    )
    workflows: list[WorkflowStatus] = Field(description="The workflows, oldest first.")
    other_campaigns: list[str] = Field(
        default_factory=list,
        description="One line per campaign on the LaunchPad not shown (see ``--campaign``).",
    )


def read_custodian_corrections(launch_dir: str | Path | None) -> list[CustodianCorrection]:
    """The corrections recorded in ``launch_dir/custodian.json`` (or ``.json.gz``).

    Parameters
    ----------
    launch_dir
        A job's run folder; None or a folder without the file gives an empty list.

    Returns
    -------
    list of CustodianCorrection
        In the order custodian made them; an unreadable file gives one entry saying so.
    """
    if launch_dir is None:
        return []
    folder = Path(launch_dir)
    for name in ("custodian.json", "custodian.json.gz"):
        path = folder / name
        if not path.is_file():
            continue
        try:
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as fh:
                runs = json.load(fh)
        except (OSError, ValueError, EOFError) as exc:
            return [
                CustodianCorrection(handler="?", errors=[f"unreadable {path}: {exc}"], actions=[])
            ]
        out: list[CustodianCorrection] = []
        for run in runs if isinstance(runs, list) else []:
            for corr in run.get("corrections", []) if isinstance(run, dict) else []:
                handler = corr.get("handler")
                if isinstance(handler, dict):
                    handler = handler.get("@class", "?")
                out.append(
                    CustodianCorrection(
                        handler=str(handler),
                        errors=[str(e) for e in corr.get("errors", [])],
                        actions=[
                            json.dumps(a, sort_keys=True, default=str)
                            for a in corr.get("actions") or []
                        ],
                    )
                )
        return out
    return []


def _failure(launch: dict[str, Any] | None) -> str | None:
    if not launch:
        return None
    stored = ((launch.get("action") or {}).get("stored_data")) or {}
    exc = stored.get("_exception")
    if not exc:
        return None
    return last_line(exc.get("_stacktrace") or exc.get("_details"))


def last_line(trace: Any) -> str:
    """The last non-blank line of a traceback (the exception and its message)."""
    lines = [line.strip() for line in str(trace or "").splitlines() if line.strip()]
    return lines[-1] if lines else "failed (no message recorded)"


def _skipped(launch_dir: str | None) -> str | None:
    """The reason of a skipped ramp step (``polaron_check.json`` with action "skipped")."""
    if not launch_dir:
        return None
    path = Path(launch_dir) / "polaron_check.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    check = data.get("polaron_check", data) if isinstance(data, dict) else None
    if isinstance(check, dict) and check.get("action") == "skipped":
        return str(check.get("reason") or "skipped")
    return None


def select_campaign(status: CampaignStatus, campaign: str | None) -> tuple[CampaignStatus, str]:
    """Keep one campaign of ``status`` (the named, the only or the latest); list the others.

    Returns the narrowed status and how the campaign was chosen.

    Raises
    ------
    InputError
        ``campaign`` matches no workflow or more than one.
    """
    from polaronflow.errors import InputError

    wfs = status.workflows
    if len(wfs) <= 1 and campaign is None:
        return status, "the only"
    if campaign is None:
        chosen, how = wfs[-1], f"the latest of {len(wfs)} (choose with --campaign)"
    else:
        text = campaign.strip().lower()
        found = [
            w
            for w in wfs
            if (w.campaign_id and len(text) >= 4 and w.campaign_id.startswith(text))
            or (text.isdigit() and any(fw.fw_id == int(text) for fw in w.fireworks))
        ]
        if len(found) != 1:
            what = "matches no" if not found else "matches more than one"
            raise InputError(f"--campaign {campaign!r} {what} campaign on {status.launchpad}")
        chosen, how = found[0], "the named"
    others = [
        f"{(w.campaign_id or '-')[:12]} '{w.name}': "
        + ", ".join(f"{n} {st}" for st, n in sorted(w.counts.items()))
        for w in wfs
        if w is not chosen
    ]
    return status.model_copy(update={"workflows": [chosen], "other_campaigns": others}), how


def launchpad_status(lp: LaunchPad, where: str = "") -> CampaignStatus:
    """Status of every workflow on an open LaunchPad.

    Parameters
    ----------
    lp
        A FireWorks LaunchPad.
    where
        How to name it in the result.

    Returns
    -------
    CampaignStatus
        Workflows oldest first, fireworks by id.
    """
    fields = ("fw_id", "name", "state", "launches", "archived_launches", *_JOB_FIELDS)
    fws = list(lp.fireworks.find({}, dict.fromkeys(fields, 1)))
    launch_ids = [i for fw in fws for i in fw.get("launches", [])]
    launches = lp.launches.find(
        {"launch_id": {"$in": launch_ids}},
        {"launch_id": 1, "launch_dir": 1, "state": 1, "action": 1},
    )
    workflows = lp.workflows.find({}, {"name": 1, "state": 1, "nodes": 1, "metadata": 1}).sort(
        "created_on", 1
    )
    return _status(fws, launches, workflows, where)


#: What :func:`_job` reads of a Firework made by jobflow (its job's uuid, index and name).
_JOB_FIELDS = tuple(f"spec._tasks.job.{key}" for key in ("uuid", "index", "name"))
#: The name jobflow gives the job that stores a replaced job's output (``jobflow.core.job``).
STORE_INPUTS = "store_inputs"


def _job(fw: dict[str, Any]) -> tuple[str, int, str] | None:
    """(uuid, index, name) of the jobflow job a Firework runs; None for other Fireworks."""
    tasks = (fw.get("spec") or {}).get("_tasks") or []
    job = tasks[0].get("job") if tasks and isinstance(tasks[0], dict) else None
    if not isinstance(job, dict) or not isinstance(job.get("uuid"), str):
        return None
    index = job.get("index")
    return job["uuid"], index if isinstance(index, int) else 1, str(job.get("name") or "")


def stand_ins(jobs: Iterable[tuple[int, str, int, str]]) -> dict[int, str]:
    """{id of a ``store_inputs`` job: the name of the job with its uuid and the lowest index}
    from (id, uuid, index, name) of every job (jobflow gives the store job the uuid of the
    job that was replaced)."""
    first: dict[str, tuple[int, str]] = {}
    stores: dict[int, str] = {}
    for job_id, uuid, index, name in jobs:
        if name == STORE_INPUTS:
            stores[job_id] = uuid
        elif uuid not in first or index < first[uuid][0]:
            first[uuid] = (index, name)
    return {job_id: first[uuid][1] for job_id, uuid in stores.items() if uuid in first}


def _status(fws: Iterable[dict], launches: Iterable[dict], workflows: Iterable[dict], where: str):
    """The status from the documents of the three collections (workflows oldest first)."""
    from polaronflow.workflows.runtime.submit import CAMPAIGN_ID_KEY

    fws = list(fws)
    stand_in = stand_ins((fw["fw_id"], *job) for fw in fws if (job := _job(fw)) is not None)
    by_id = {fw["fw_id"]: fw for fw in fws}
    by_launch = {doc["launch_id"]: doc for doc in launches}
    result: list[WorkflowStatus] = []
    for wf in workflows:
        items: list[FireworkStatus] = []
        for fw_id in sorted(wf.get("nodes", [])):
            fw = by_id.get(fw_id)
            if fw is None:
                continue
            ids = fw.get("launches", [])
            latest = by_launch.get(max(ids)) if ids else None
            launch_dir = latest.get("launch_dir") if latest else None
            items.append(
                FireworkStatus(
                    fw_id=fw_id,
                    name=fw.get("name", ""),
                    state=fw.get("state", "?"),
                    launch_dir=launch_dir,
                    n_launches=len(ids) + len(fw.get("archived_launches", [])),
                    failure=_failure(latest) if fw.get("state") == "FIZZLED" else None,
                    corrections=read_custodian_corrections(launch_dir),
                    skipped=_skipped(launch_dir) if fw.get("state") == "COMPLETED" else None,
                    stores_output_of=stand_in.get(fw_id),
                )
            )
        counts: dict[str, int] = {}
        for item in items:
            counts[item.state] = counts.get(item.state, 0) + 1
        result.append(
            WorkflowStatus(
                name=wf.get("name", ""),
                state=wf.get("state", "?"),
                campaign_id=(wf.get("metadata") or {}).get(CAMPAIGN_ID_KEY),
                counts=counts,
                fireworks=items,
            )
        )
    return CampaignStatus(launchpad=where, workflows=result)


def _created_on(wf: dict[str, Any]) -> tuple[bool, Any]:
    from bson import json_util

    when = wf.get("created_on")
    if isinstance(when, dict):  # extended JSON as saved: {"$date": ...}
        when = json_util.object_hook(when)
    return when is not None, when if when is not None else 0


def embedded_status(project_dir: str | Path, where: str = "") -> CampaignStatus:
    """Status of the embedded LaunchPad as last saved, without FireWorks.

    The file and its journal are read once without the lock (the file is only replaced by
    atomic renames, the journal only appended to; see :func:`.lpfile.read_state`) and the
    documents are used as they are: no LaunchPad, no mongomock queries, no Workflow objects.
    The answer is the one :func:`launchpad_status` gives on the same store (a test compares).
    """
    from polaronflow.workflows.runtime.lpfile import gc_paused
    from polaronflow.workflows.runtime.submit import read_embedded_documents

    # nothing read here outlives the call: the collector need not scan it meanwhile
    with gc_paused():
        docs = read_embedded_documents(project_dir, ["fireworks", "launches", "workflows"])
        # mongomock's sort by created_on: a stable sort, documents without one first
        workflows = sorted(docs["workflows"], key=_created_on)
        return _status(docs["fireworks"], docs["launches"], workflows, where)


def pick_or_latest(refs: list, campaign: str | None) -> tuple[Any, str]:
    """The campaign named (see :func:`~.recovery.pick_campaign`), else the only or the latest
    one; returns it and how it was chosen ("the only", "the latest of N", "the named")."""
    from polaronflow.workflows.runtime.recovery import pick_campaign

    if campaign is not None:
        return pick_campaign(refs, campaign), "the named"
    if len(refs) == 1:
        return refs[0], "the only"
    return refs[-1], f"the latest of {len(refs)} (choose with --campaign):"


def campaign_status(settings: PolaronflowSettings | None = None) -> CampaignStatus:
    """Status of the configured LaunchPad, or of the jobflow-remote project's queue when the
    settings' runner is jobflow-remote (the same configuration as submission).

    Parameters
    ----------
    settings
        polaronflow settings; default :func:`~polaronflow.settings.load_settings`.

    Returns
    -------
    CampaignStatus
        Every workflow with its jobs.

    Raises
    ------
    ConfigError
        The LaunchPad file or server cannot be read; credentials never appear in the message.
    """
    from polaronflow.workflows.runtime.submit import (
        LAUNCHPAD_FILE,
        _db_error,
        _is_db_error,
        _settings,
        open_launchpad,
    )

    s = _settings(settings)
    if s.runner == "jobflow-remote":
        return jfremote_status(s)
    where = (
        str(s.project_dir / LAUNCHPAD_FILE) if s.launchpad_file is None else str(s.launchpad_file)
    )
    if s.launchpad_file is None:
        return embedded_status(s.project_dir, where)
    with open_launchpad(s, read_only=True) as lp:
        try:
            return launchpad_status(lp, where)
        except Exception as exc:
            if _is_db_error(exc):
                raise _db_error(s, f"cannot read the LaunchPad {where}", exc) from None
            raise


def jfremote_status(settings: PolaronflowSettings) -> CampaignStatus:
    """Every polaronflow campaign in the project's queue as a
    :class:`CampaignStatus`: per flow and job the
    jobflow-remote state, DB id (as ``fw_id``), run folder, failure (the last line of the
    recorded error) and custodian's corrections, as ``polaronflow status`` shows FireWorks'.

    Raises
    ------
    ConfigError
        jobflow-remote is missing, or the project or its queue cannot be read.
    """
    from polaronflow.workflows.runtime.jfremote import _project, _queue_error
    from polaronflow.workflows.runtime.submit import CAMPAIGN_ID_KEY

    proj, path = _project(settings.jfremote_project)
    key = f"metadata.{CAMPAIGN_ID_KEY}"
    fields = ("db_id", "uuid", "index", "job.name", "state", "run_dir", "error", "remote.error")
    try:
        jc = proj.get_job_controller()
        flows = list(
            jc.flows.find(
                {key: {"$exists": True}}, {"name": 1, "jobs": 1, "state": 1, key: 1}
            ).sort("created_on", 1)
        )
        uuids = [u for f in flows for u in f.get("jobs", [])]
        jobs = list(jc.jobs.find({"uuid": {"$in": uuids}}, dict.fromkeys(fields, 1)))
    except Exception as exc:
        raise _queue_error(proj, path, exc) from None

    def db_id(job: dict[str, Any]) -> int:
        text = str(job.get("db_id", ""))
        return int(text) if text.isdigit() else -1

    def name(job: dict[str, Any]) -> str:
        return str((job.get("job") or {}).get("name") or "")

    stand_in = stand_ins((db_id(j), j["uuid"], int(j.get("index", 1)), name(j)) for j in jobs)
    by_uuid: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        by_uuid.setdefault(job["uuid"], []).append(job)
    workflows = []
    for flow in flows:
        items = []
        members = [j for u in dict.fromkeys(flow.get("jobs", [])) for j in by_uuid.get(u, [])]
        for job in sorted(members, key=db_id):
            state, run_dir = str(job.get("state", "?")), job.get("run_dir")
            error = job.get("error") or (job.get("remote") or {}).get("error")
            items.append(
                FireworkStatus(
                    fw_id=db_id(job),
                    name=name(job),
                    state=state,
                    launch_dir=run_dir,
                    n_launches=1 if run_dir else 0,
                    failure=last_line(error) if state in ("FAILED", "REMOTE_ERROR") else None,
                    corrections=read_custodian_corrections(run_dir),
                    skipped=_skipped(run_dir) if state == "COMPLETED" else None,
                    stores_output_of=stand_in.get(db_id(job)),
                )
            )
        counts: dict[str, int] = {}
        for item in items:
            counts[item.state] = counts.get(item.state, 0) + 1
        workflows.append(
            WorkflowStatus(
                name=str(flow.get("name", "")),
                state=str(flow.get("state", "?")),
                campaign_id=flow["metadata"][CAMPAIGN_ID_KEY],
                counts=counts,
                fireworks=items,
            )
        )
    where = f"jobflow-remote project {proj.name}"
    return CampaignStatus(launchpad=where, runner="jobflow-remote", workflows=workflows)
