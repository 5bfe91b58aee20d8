"""The ground-state search: rank the screened candidates, run the full ramp for the best few.

A search (``CampaignOptions(search=True)``, ``polaronflow submit --search``) screens every
candidate of a dopant (:class:`~polaronflow.workflows.campaign.plan.SearchPlan`) with cheaper
settings — the seeds placed in the relaxed pristine supercell, a two-step ramp (the first U,
then the production U, WAVECAR handed on), ions only, 50 meV/Å, Γ only — each step with the
polaron check. :class:`SearchSelectMaker` then ranks the candidates whose polarons stayed
localised by the screening energy and replaces itself by the full U ramp and static of the
``keep`` lowest (jobs ``T-c{k}-…``). It holds those ramps' makers as attributes, so atomate2's
powerups reach them although they are made at run time.

Its output: ``ranking`` (every candidate: ΔE to the lowest, sites, shells, moments, spin
state, or why it was left out), ``selected`` (the full ramps' tags) and ``statics`` (static job
name → run folder), which the campaign's analysis job reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobflow import Flow, Maker, Response, job

from polaronflow import naming
from polaronflow.workflows.campaign.jobs import seed_job

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from polaronflow.workflows.campaign.ramp import URampMaker


def rank_screening(screened: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Rank screened candidates: localised ones by energy, then the rest with their reason.

    Parameters
    ----------
    screened
        Screening tag → ``{"output": the task document's output (with ``energy``, eV) or
        None, "additional_json": {...} or None, "dir_name": str or None, "candidate": {...}}``
        (the last screening step's task document fields; None when the step failed).

    Returns
    -------
    list of dict
        One row per candidate, best first: ``tag``, ``candidate`` (its id), ``nupdown``,
        ``shells``, ``dopant_w_distances`` (Å), ``energy`` (eV), ``delta_e`` (eV, to the lowest
        localised), ``polaron_sites`` (0-based), ``polaron_ions`` (VASP 1-based),
        ``polaron_moments`` (μB), ``usable`` and ``reason``.
    """
    rows: list[dict[str, Any]] = []
    for tag, item in screened.items():
        info = item.get("candidate") or {}
        extra = item.get("additional_json") or {}
        check = extra.get("polaron_check") or {}
        output = item.get("output")
        energy = item.get("energy")
        if energy is None and output is not None:
            energy = (
                output.get("energy")
                if isinstance(output, dict)
                else getattr(output, "energy", None)
            )
        reason = ""
        if extra.get("skipped"):
            reason = check.get("reason", "skipped")
        elif energy is None:
            reason = "the screening did not finish (failed or lost)"
        elif not check:
            reason = "no polaron check recorded"
        elif not check.get("localised"):
            reason = check.get("reason", "polarons not localised")
        sites = list(check.get("polaron_sites") or [])
        rows.append(
            {
                "tag": tag,
                "candidate": info.get("id"),
                "number": info.get("number"),
                "nupdown": info.get("nupdown"),
                "shells": info.get("shells"),
                "dopant_w_distances": info.get("dopant_w_distances"),
                "class_count": info.get("count"),
                "energy": None if energy is None else float(energy),
                "delta_e": None,
                "polaron_sites": sites,
                "polaron_ions": [s + 1 for s in sites],
                "polaron_moments": list(check.get("polaron_moments") or []),
                "moved": bool(check.get("moved")),
                "usable": not reason,
                "reason": reason,
            }
        )
    usable = sorted((r for r in rows if r["usable"]), key=lambda r: (r["energy"], r["tag"]))
    if usable:
        lowest = usable[0]["energy"]
        for r in usable:
            r["delta_e"] = r["energy"] - lowest
    rest = sorted((r for r in rows if not r["usable"]), key=lambda r: r["tag"])
    return usable + rest


@dataclass
class SearchSelectMaker(Maker):
    """Rank a search's screened candidates and run the full ramp for the ``keep`` lowest.

    Parameters
    ----------
    name
        Job name (``T-select``).
    keep
        How many localised candidates get the full ramp and static.
    ramp_makers
        Screening tag → the full ramp of that candidate (a
        :class:`~polaronflow.workflows.campaign.ramp.URampMaker` named ``T-c{k}``).
    seeds
        Screening tag → keyword arguments of the candidate's seed job.
    candidates
        Screening tag → the candidate's description (id, number, spin state, shells, ...).
    """

    name: str = "search-select"
    keep: int = 3
    ramp_makers: dict[str, URampMaker] = field(default_factory=dict)
    seeds: dict[str, dict[str, Any]] = field(default_factory=dict)
    candidates: dict[str, dict[str, Any]] = field(default_factory=dict)

    @job(name="search-select")
    def make(self, host: Structure, screened: dict[str, dict[str, Any]]) -> Response:
        """Rank, then replace this job by the full ramps of the best candidates.

        Parameters
        ----------
        host
            The relaxed pristine supercell (the seeds are placed in it again).
        screened
            Screening tag → the last screening step's ``energy``, ``additional_json`` and
            ``dir_name`` (references resolved by jobflow; None where a step failed).

        Returns
        -------
        jobflow.Response
            Replaced by the selected candidates' seed jobs, ramps and statics; the output is
            ``{"ranking", "selected", "statics"}``.
        """
        merged = {
            tag: {**(screened.get(tag) or {}), "candidate": self.candidates.get(tag, {})}
            for tag in self.candidates
        }
        ranking = rank_screening(merged)
        chosen = [r["tag"] for r in ranking if r["usable"]][: self.keep]
        jobs: list[Any] = []
        statics: dict[str, Any] = {}
        selected: list[str] = []
        for tag in chosen:
            ramp_maker = self.ramp_makers[tag]
            seed = seed_job(host, **self.seeds[tag])
            seed.name = naming.seed_name(ramp_maker.name)
            ramp = ramp_maker.make(seed.output["structure"])
            jobs += [seed, ramp]
            selected.append(ramp_maker.name)
            statics[naming.static_name(ramp_maker.name)] = ramp.output.dir_name
        output = {"ranking": ranking, "selected": selected, "statics": statics}
        if not jobs:
            return Response(output=output)
        return Response(replace=Flow(jobs, output=output, name=self.name))
