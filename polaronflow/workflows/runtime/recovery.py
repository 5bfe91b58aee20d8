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
        worker are gone (this host; their VASP groups are killed first); on MongoDB FireWorks'
        ``detect_lostruns`` (no ping for 4 hours, FireWorks' default).
    names
        Job names (any state but RUNNING on MongoDB, where a live worker may hold them).

    Raises
    ------
    InputError
        Nothing chosen, or a name that is not a job of the campaign.
    """
    from polaronflow.workflows.runtime.submit import _settings, open_launchpad

    if not (fizzled or lost or names):
        raise InputError("say what to rerun: --fizzled, --lost and/or --job NAME")
    s = _settings(settings)
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
        if lost:
            chosen |= {i: fws[i]["name"] for i in _lost(lp, s, list(fws))}
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
    return RerunResult(campaign=ref, rerun=dict(sorted(chosen.items())), launchpad=_where(s))


def _lost(lp: LaunchPad, s: PolaronflowSettings, fw_ids: list[int]) -> list[int]:
    running = set(
        lp.get_fw_ids({"fw_id": {"$in": fw_ids}, "state": {"$in": ["RUNNING", "RESERVED"]}})
    )
    if s.launchpad_file is None:
        from polaronflow.workflows.runtime.launch import _classify_stale, _kill_recorded

        lost, _ = _classify_stale(lp, sorted(running))
        for fw_id in lost:
            _kill_recorded(lp, fw_id)
        return lost
    _, lost_fws, _ = lp.detect_lostruns(rerun=False)
    return sorted(set(lost_fws) & running)


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
