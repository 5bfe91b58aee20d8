"""Recovery: run failed or lost jobs again (``polaronflow rerun``), remove a campaign
(``polaronflow delete``).

Both work on the configured LaunchPad through FireWorks' own operations (``rerun_fw``,
``delete_wf``, ``detect_lostruns``); on the embedded store under the project's lock, so no
launch can run at the same time. A campaign is picked as in ``status``: the only one, or the
one named by a prefix of its campaign id (or a FireWorks id of one of its jobs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from polaronflow.errors import InputError

if TYPE_CHECKING:
    from fireworks import LaunchPad

    from polaronflow.settings import PolaronflowSettings


class CampaignRef(BaseModel):
    """A workflow on the LaunchPad."""

    workflow_id: int = Field(description="FireWorks id of the workflow's first job.")
    name: str = Field(description="Workflow name.")
    campaign_id: str | None = Field(description="Campaign fingerprint, if submitted as one.")
    fw_ids: list[int] = Field(description="FireWorks ids of its jobs.")
    states: dict[str, int] = Field(description="Jobs per FireWorks state.")


class RerunResult(BaseModel):
    """What :func:`rerun_jobs` put back to READY."""

    campaign: CampaignRef = Field(description="The campaign.")
    rerun: dict[int, str] = Field(description="FireWorks id -> job name of every job rerun.")
    alive: dict[int, str] = Field(
        default_factory=dict,
        description="MongoDB: jobs whose launch stopped pinging but shows signs of life (a "
        "process in its folder on this host, or a file in it written within the expiry): "
        "left alone.",
    )
    repaired: dict[int, str] = Field(
        default_factory=dict,
        description="MongoDB: RUNNING jobs whose launch had finished (the workflow update was "
        "lost): their state brought up to date, not rerun.",
    )
    launchpad: str = Field(description="The LaunchPad used.")


class DeleteResult(BaseModel):
    """What :func:`delete_campaign` removed."""

    campaign: CampaignRef = Field(description="The campaign removed.")
    outputs_removed: int = Field(description="JobStore documents of its jobs removed.")
    launchpad: str = Field(description="The LaunchPad used.")


def list_campaigns(lp: LaunchPad) -> list[CampaignRef]:
    """Every workflow on ``lp``, oldest first."""
    from collections import Counter

    from polaronflow.workflows.runtime.submit import CAMPAIGN_ID_KEY

    refs = []
    for wf in lp.workflows.find({}, {"nodes": 1, "name": 1, "metadata": 1}).sort("created_on", 1):
        ids = sorted(int(i) for i in wf.get("nodes", []))
        states = Counter(
            d["state"] for d in lp.fireworks.find({"fw_id": {"$in": ids}}, {"state": 1})
        )
        refs.append(
            CampaignRef(
                workflow_id=ids[0] if ids else -1,
                name=wf.get("name", ""),
                campaign_id=(wf.get("metadata") or {}).get(CAMPAIGN_ID_KEY),
                fw_ids=ids,
                states=dict(sorted(states.items())),
            )
        )
    return refs


def pick_campaign(refs: list[CampaignRef], campaign: str | None) -> CampaignRef:
    """The campaign named by ``campaign`` (a campaign-id prefix or a FireWorks id of one of its
    jobs), or the only one.

    Raises
    ------
    InputError
        No campaign, an unknown or ambiguous name, or several campaigns and no name.
    """
    if not refs:
        raise InputError("there is no campaign on the LaunchPad")
    if campaign is None:
        if len(refs) == 1:
            return refs[0]
        listing = "; ".join(_describe(r) for r in refs)
        raise InputError(
            f"{len(refs)} campaigns on the LaunchPad ({listing}): name one with --campaign"
        )
    text = campaign.strip().lower()
    found = [
        r
        for r in refs
        if (r.campaign_id and len(text) >= 4 and r.campaign_id.startswith(text))
        or (text.isdigit() and int(text) in r.fw_ids)
    ]
    if len(found) != 1:
        what = "matches no" if not found else "matches more than one"
        raise InputError(f"--campaign {campaign!r} {what} campaign (see `polaronflow status`)")
    return found[0]


def _describe(ref: CampaignRef) -> str:
    cid = (ref.campaign_id or "no campaign id")[:12]
    counts = ", ".join(f"{n} {s}" for s, n in ref.states.items())
    return f"{cid} '{ref.name}' (FireWorks ids {ref.fw_ids[0]}-{ref.fw_ids[-1]}: {counts})"


def describe_campaign(ref: CampaignRef) -> str:
    """One line naming a campaign: id prefix, name, ids and job states."""
    return _describe(ref)


def _where(s: PolaronflowSettings) -> str:
    from polaronflow.workflows.runtime.submit import LAUNCHPAD_FILE

    return (
        str(s.project_dir / LAUNCHPAD_FILE) if s.launchpad_file is None else str(s.launchpad_file)
    )


def rerun_jobs(
    settings: PolaronflowSettings | None = None,
    campaign: str | None = None,
    fizzled: bool = False,
    lost: bool = False,
    names: list[str] | None = None,
    lost_after: float | None = None,
) -> RerunResult:
    """Put jobs of a campaign back to READY: FIZZLED ones, lost ones, or jobs named.

    Parameters
    ----------
    settings
        polaronflow settings (which LaunchPad); default :func:`load_settings`.
    campaign
        Campaign-id prefix or FireWorks id; default the only campaign.
    fizzled
        Every FIZZLED job of the campaign.
    lost
        Every job whose launch is lost: on the embedded store a RUNNING job whose launcher and
        worker are gone (this host; their VASP groups are killed first); on MongoDB see
        :func:`_lost_on_mongodb` (no ping for ``lost_after`` seconds and no sign of life).
    names
        Job names (any state but RUNNING on MongoDB, where a live worker may hold them).
    lost_after
        MongoDB only: seconds without a ping before a launch counts as lost (default
        FireWorks' ``RUN_EXPIRATION_SECS``, 4 hours); at least two ping intervals
        (``PING_TIME_SECS`` of the FireWorks configuration).

    Raises
    ------
    InputError
        Nothing chosen, a name that is not a job of the campaign, ``lost_after`` on the
        embedded store or shorter than two ping intervals.
    """
    from polaronflow.workflows.runtime.submit import _settings, open_launchpad

    if not (fizzled or lost or names):
        raise InputError("say what to rerun: --fizzled, --lost and/or --job NAME")
    s = _settings(settings)
    if lost_after is not None and not lost:
        raise InputError("--lost-after goes with --lost")
    if lost_after is not None and s.launchpad_file is None:
        raise InputError(
            "--lost-after applies to a MongoDB LaunchPad; on the embedded store a launch is "
            "lost when its processes are gone"
        )
    alive: dict[int, str] = {}
    repaired: dict[int, str] = {}
    with open_launchpad(s) as lp:
        ref = pick_campaign(list_campaigns(lp), campaign)
        fws = {
            d["fw_id"]: d
            for d in lp.fireworks.find(
                {"fw_id": {"$in": ref.fw_ids}}, {"fw_id": 1, "name": 1, "state": 1}
            )
        }
        chosen: dict[int, str] = {}
        if fizzled:
            chosen |= {i: d["name"] for i, d in fws.items() if d["state"] == "FIZZLED"}
        if lost and s.launchpad_file is None:
            chosen |= {i: fws[i]["name"] for i in _lost(lp, s, list(fws))}
        elif lost:
            found = _lost_on_mongodb(lp, list(fws), lost_after)
            alive = {i: fws[i]["name"] for i in found.alive}
            repaired = {i: fws[i]["name"] for i in found.repaired}
            chosen |= {i: fws[i]["name"] for i in found.lost}
        by_name = {d["name"]: i for i, d in fws.items()}
        for name in names or []:
            if name not in by_name:
                raise InputError(f"--job {name!r} is not a job of campaign {_describe(ref)}")
            if s.launchpad_file is not None and fws[by_name[name]]["state"] == "RUNNING":
                raise InputError(
                    f"--job {name!r} is RUNNING on a MongoDB LaunchPad (a worker may hold it): "
                    "use --lost once its launch is lost"
                )
            chosen[by_name[name]] = name
        for fw_id in sorted(chosen):
            lp.rerun_fw(fw_id)
    ref.states = {}
    return RerunResult(
        campaign=ref,
        rerun=dict(sorted(chosen.items())),
        alive=dict(sorted(alive.items())),
        repaired=dict(sorted(repaired.items())),
        launchpad=_where(s),
    )


def _lost(lp: LaunchPad, s: PolaronflowSettings, fw_ids: list[int]) -> list[int]:
    """Embedded store: RUNNING/RESERVED jobs of this host whose processes are gone."""
    from polaronflow.workflows.runtime.launch import _classify_stale, _kill_recorded

    running = lp.get_fw_ids({"fw_id": {"$in": fw_ids}, "state": {"$in": ["RUNNING", "RESERVED"]}})
    lost, _ = _classify_stale(lp, sorted(running))
    for fw_id in lost:
        _kill_recorded(lp, fw_id)
    return lost


class _MongoLost(BaseModel):
    lost: list[int] = []
    alive: list[int] = []
    repaired: list[int] = []


def _lost_on_mongodb(lp: LaunchPad, fw_ids: list[int], lost_after: float | None) -> _MongoLost:
    """Lost jobs on a MongoDB LaunchPad, told apart from live ones as far as this host can.

    A launch is a candidate when it has not pinged for ``lost_after`` seconds (FireWorks'
    ``detect_lostruns``). FireWorks' ping thread ends at the first ping that fails, so a
    worker that lived through a MongoDB outage runs on without pinging: a candidate is
    therefore left alone (``alive``) if a process on this host has its working directory in
    the launch folder, or if a file in the folder was written within ``lost_after`` (VASP
    writes OUTCAR/OSZICAR as it goes). The others have their launch marked FIZZLED (kept,
    archived by the rerun). A Firework RESERVED for longer than ``lost_after`` without a
    running launch (its worker died between reserving and starting it) is lost too. A
    RUNNING Firework whose launch has finished is brought up to date (``repaired``), not
    rerun.
    """
    import datetime

    from fireworks.fw_config import PING_TIME_SECS, RUN_EXPIRATION_SECS

    expiry = float(RUN_EXPIRATION_SECS if lost_after is None else lost_after)
    if expiry < 2 * PING_TIME_SECS:
        raise InputError(
            f"--lost-after {expiry:g} s is shorter than two FireWorks ping intervals "
            f"(PING_TIME_SECS = {PING_TIME_SECS} s): live launches would look lost"
        )
    query = {"fw_id": {"$in": fw_ids}}
    lost_launches, lost_fws, inconsistent = lp.detect_lostruns(
        expiration_secs=expiry, query=query, refresh=True
    )
    found = _MongoLost(repaired=sorted(set(inconsistent) & set(fw_ids)))
    by_fw: dict[int, list[dict]] = {}
    fields = {"launch_id": 1, "fw_id": 1, "host": 1, "launch_dir": 1}
    for launch in lp.launches.find({"launch_id": {"$in": lost_launches}}, fields):
        by_fw.setdefault(launch["fw_id"], []).append(launch)
    cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=expiry)
    reserved = []
    for fw in lp.fireworks.find({**query, "state": "RESERVED"}, {"fw_id": 1, "updated_on": 1}):
        updated = fw.get("updated_on")
        if isinstance(updated, str):
            updated = datetime.datetime.fromisoformat(updated)
        if isinstance(updated, datetime.datetime) and updated.tzinfo is None:
            updated = updated.replace(tzinfo=datetime.UTC)
        live = lp.launches.count_documents(
            {
                "fw_id": fw["fw_id"],
                "launch_id": {"$nin": lost_launches},
                "state": {"$in": ["RUNNING", "RESERVED"]},
            }
        )
        if isinstance(updated, datetime.datetime) and updated < cutoff and not live:
            reserved.append(fw["fw_id"])
    for fw_id in sorted((set(lost_fws) | set(reserved)) & set(fw_ids)):
        launches = by_fw.get(fw_id, [])
        if any(_shows_life(ln, expiry) for ln in launches):
            found.alive.append(fw_id)
            continue
        for ln in launches:
            lp.mark_fizzled(ln["launch_id"])
        found.lost.append(fw_id)
    found.lost.sort()
    return found


def _shows_life(launch: dict, expiry: float) -> bool:
    """A process on this host works in the launch folder, or a file in it is recent."""
    import socket
    import time
    from pathlib import Path

    import psutil

    folder = launch.get("launch_dir")
    if not folder:
        return False
    path = Path(folder)
    if launch.get("host") == socket.gethostname():
        for proc in psutil.process_iter(["cwd"]):
            cwd = proc.info.get("cwd")
            if cwd and (cwd == str(path) or cwd.startswith(str(path) + "/")):
                return True
    try:
        newest = max((p.stat().st_mtime for p in path.rglob("*") if p.is_file()), default=None)
    except OSError:
        return False
    return newest is not None and time.time() - newest < expiry


def delete_campaign(
    settings: PolaronflowSettings | None = None,
    campaign: str | None = None,
    confirm: Any = None,
) -> DeleteResult:
    """Remove a campaign's workflow from the LaunchPad and its outputs from the JobStore.

    Run folders stay on disk. ``confirm(description) -> bool`` is asked first (under the lock,
    with the campaign found); False cancels.

    Raises
    ------
    InputError
        No such campaign, several and none named, or a job of it RUNNING.
    """
    from polaronflow.errors import PolaronflowError
    from polaronflow.workflows.runtime.submit import _jobstore, _settings, open_launchpad

    s = _settings(settings)
    with open_launchpad(s) as lp:
        ref = pick_campaign(list_campaigns(lp), campaign)
        if ref.states.get("RUNNING"):
            raise InputError(
                f"campaign {_describe(ref)} has RUNNING jobs: stop them first (or "
                "`polaronflow rerun --lost` if their launch is lost)"
            )
        if confirm is not None and not confirm(_describe(ref)):
            raise _Cancelled("cancelled; nothing deleted")
        uuids = [
            d["spec"]["_tasks"][0]["job"]["uuid"]
            for d in lp.fireworks.find({"fw_id": {"$in": ref.fw_ids}}, {"spec._tasks": 1})
            if d.get("spec", {}).get("_tasks")
            and isinstance(d["spec"]["_tasks"][0].get("job"), dict)
        ]
        lp.delete_wf(ref.workflow_id, delete_launch_dirs=False)
    removed = 0
    store = _jobstore(s)
    if store is not None and uuids:
        try:
            store.connect()
            removed = store.count({"uuid": {"$in": uuids}})
            store.remove_docs({"uuid": {"$in": uuids}})
        except Exception as exc:  # maggma/pymongo raise many types
            raise PolaronflowError(
                "the workflow was deleted but its outputs could not be removed: "
                f"{type(exc).__name__}"
            ) from None
    return DeleteResult(campaign=ref, outputs_removed=removed, launchpad=_where(s))


class _Cancelled(InputError):
    exit_code = 1
