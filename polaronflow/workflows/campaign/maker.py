"""The campaign's one Flow builder: :class:`PolaronCampaignMaker`.

It walks a :class:`~polaronflow.workflows.campaign.plan.CampaignPlan` and composes the makers
of the other modules, as atomate2's ``DoubleRelaxMaker`` composes its relaxations:

* the pristine unit-cell relaxation, the supercell (a structure job), its relaxation and static;
* per doped system: the seed job (dopant and polaron seeds placed in the *relaxed* pristine
  supercell), then a :class:`~polaronflow.workflows.campaign.ramp.URampMaker` — the only U
  ramp — with the polaron check and the optional re-seeded retry;
* per reference phase: its relaxation, then a
  :class:`~polaronflow.workflows.campaign.convergence.KPointConvergenceMaker`, whose statics
  are made at run time from a VASP maker it holds as an attribute;
* last, the ``campaign-analysis`` job, which runs whatever happened upstream.

Every VASP job is an atomate2 ``BaseVaspMaker`` job (also those made at run time), so
atomate2's powerups applied to the Flow (``update_user_incar_settings(flow, {...})`` and
friends) reach all of them. ``polaronflow submit``, ``polaronflow demo`` and the tests all
build the campaign through :func:`build_campaign`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobflow import Flow, Maker

from polaronflow import naming
from polaronflow.errors import WorkflowError
from polaronflow.workflows.campaign.convergence import KPointConvergenceMaker
from polaronflow.workflows.campaign.jobs import seed_job, supercell_job
from polaronflow.workflows.campaign.options import CampaignOptions, make_options
from polaronflow.workflows.campaign.plan import CampaignPlan, SearchPlan, plan_campaign
from polaronflow.workflows.campaign.planning import KPointConvergencePlan, RampPlan
from polaronflow.workflows.campaign.ramp import URampMaker
from polaronflow.workflows.campaign.search import SearchSelectMaker
from polaronflow.workflows.vasp.makers import make_job, maker_from_spec
from polaronflow.workflows.vasp.spec import DEFAULT_RESEED_STRETCH

if TYPE_CHECKING:
    from atomate2.vasp.jobs.base import BaseVaspMaker
    from jobflow import Job

    from polaronflow.workflows.vasp.spec import VaspJobSpec

#: Name of the campaign Flow.
CAMPAIGN_FLOW_NAME = "polaronflow-campaign"


@dataclass
class PolaronCampaignMaker(Maker):
    """Build the campaign Flow from a :class:`CampaignPlan` (see the module docstring).

    Parameters
    ----------
    name
        Name of the Flow.
    polaron_check
        Check the polarons after every ramp step and the static; a delocalised step stops its
        ramp (the later steps skip, with the reason).
    polaron_threshold
        |m| (μB) at or above which a W site counts as a polaron.
    reseed_on_delocalisation
        Retry a delocalised step once, fresh (no WAVECAR), with the seeds put back.
    reseed_stretch
        Bond-distortion seed of that retry (fraction of the W–O bonds; 0 = none).
    reseed_at_previous_u
        The retry first re-localises at the previous, higher U of the schedule.
    analysis
        End the Flow with the ``campaign-analysis`` job.
    """

    name: str = CAMPAIGN_FLOW_NAME
    polaron_check: bool = True
    polaron_threshold: float = 0.3
    reseed_on_delocalisation: bool = False
    reseed_stretch: float = DEFAULT_RESEED_STRETCH
    reseed_at_previous_u: bool = False
    analysis: bool = True

    @classmethod
    def from_options(cls, options: CampaignOptions) -> PolaronCampaignMaker:
        """The maker with the check, re-seed and analysis settings of ``options``."""
        return cls(
            polaron_check=options.polaron_check,
            reseed_on_delocalisation=options.reseed_on_delocalisation,
            reseed_stretch=options.reseed_stretch,
            reseed_at_previous_u=options.reseed_at_previous_u,
            analysis=options.analysis,
        )

    # ------------------------------------------------------------------ makers
    def ramp_maker(self, ramp: RampPlan, electrons: int) -> URampMaker:
        """A U ramp: its plan plus this maker's check settings."""
        fields = {f.name: getattr(ramp, f.name) for f in dataclasses.fields(RampPlan)}
        return URampMaker(
            **fields,
            check_polarons=self.polaron_check,
            polaron_threshold=self.polaron_threshold,
            expected_polarons=float(electrons),
            reseed_on_delocalisation=self.reseed_on_delocalisation,
            reseed_stretch=self.reseed_stretch,
            reseed_at_previous_u=self.reseed_at_previous_u,
        )

    @staticmethod
    def kpoint_maker(kconv: KPointConvergencePlan) -> KPointConvergenceMaker:
        """The k-point convergence loop of one reference."""
        fields = {f.name: getattr(kconv, f.name) for f in dataclasses.fields(KPointConvergencePlan)}
        return KPointConvergenceMaker(**fields)

    @staticmethod
    def vasp_maker(spec: VaspJobSpec, options: CampaignOptions) -> BaseVaspMaker:
        """The atomate2 maker of one planned VASP job."""
        return maker_from_spec(spec, options.walltime, options.vasp_cmd, options.potcar_spec)

    # -------------------------------------------------------------------- make
    def make(self, plan: CampaignPlan) -> Flow:
        """Build the campaign Flow.

        Parameters
        ----------
        plan
            From :func:`~polaronflow.workflows.campaign.plan.plan_campaign`.

        Returns
        -------
        jobflow.Flow
            Named :attr:`name`; jobs in dependency order, each with its record as metadata.
        """
        options = plan.options
        pristine = plan.pristine
        jobs: list[Job | Flow] = []

        unit = make_job(self.vasp_maker(pristine.unit_relax, options), pristine.unit_cell)
        supercell = supercell_job(unit.output.structure, list(pristine.scaling))
        supercell.name = naming.SUPERCELL
        sc_relax = make_job(self.vasp_maker(pristine.supercell_relax, options), supercell.output)
        sc_static = make_job(
            self.vasp_maker(pristine.supercell_static, options),
            sc_relax.output.structure,
            prev_dir=sc_relax.output.dir_name,
        )
        jobs += [unit, supercell, sc_relax, sc_static]
        analysed: dict[str, Any] = {
            naming.UNIT_RELAX: unit.output.dir_name,
            naming.SUPERCELL_STATIC: sc_static.output.dir_name,
        }

        for system in plan.systems:
            seed = seed_job(sc_relax.output.structure, **system.seed.kwargs())
            seed.name = system.seed_name
            seed.metadata = {**(seed.metadata or {}), "polaronflow": {"role": "seed"}}
            ramp = self.ramp_maker(system.ramp, system.electrons).make(seed.output["structure"])
            jobs += [seed, ramp]
            analysed[naming.static_name(system.tag)] = ramp.output.dir_name

        searches: dict[str, Any] = {}
        for search in plan.searches:
            select = self._search(search, sc_relax.output.structure, jobs)
            searches[search.label] = select.output

        for reference in plan.references:
            relax = make_job(self.vasp_maker(reference.relax, options), reference.structure)
            loop = self.kpoint_maker(reference.kconv).make(relax.output.structure)
            jobs += [relax, loop]
            analysed[reference.loop_name] = loop.output.dir_name

        if self.analysis:
            jobs.append(_analysis_job(analysed, searches))
        return Flow(jobs, name=self.name)

    def _search(self, search: SearchPlan, host: Any, jobs: list[Job | Flow]) -> Job:
        """Every candidate's seed and screening, then the selection (appended to ``jobs``)."""
        from jobflow import JobConfig, OnMissing

        screened: dict[str, Any] = {}
        ramp_makers: dict[str, URampMaker] = {}
        seeds: dict[str, dict[str, Any]] = {}
        candidates: dict[str, dict[str, Any]] = {}
        for c in search.candidates:
            seed = seed_job(host, **c.seed.kwargs())
            seed.name = c.seed_name
            screen = self.ramp_maker(c.screen, search.electrons).make(seed.output["structure"])
            jobs += [seed, screen]
            tag = c.screen.name
            screened[tag] = {
                "output": screen.output.output,
                "additional_json": screen.output.additional_json,
                "dir_name": screen.output.dir_name,
            }
            ramp_makers[tag] = self.ramp_maker(c.full, search.electrons)
            seeds[tag] = c.seed.kwargs()
            candidates[tag] = {
                **c.candidate.model_dump(
                    mode="json",
                    include={"id", "nupdown", "shells", "dopant_w_distances", "count"},
                ),
                "number": c.number,
            }
        select = SearchSelectMaker(
            name=search.select_name,
            keep=search.keep,
            ramp_makers=ramp_makers,
            seeds=seeds,
            candidates=candidates,
        ).make(host, screened)
        select.name = search.select_name
        # Ranks whatever finished: a failed screening is one candidate fewer, not a stop.
        select.config = JobConfig(on_missing_references=OnMissing.NONE)
        select.metadata = {"polaronflow": {"role": str(naming.Role.SELECT)}}
        jobs.append(select)
        return select


def _analysis_job(run_dirs: dict[str, Any], searches: dict[str, Any] | None = None) -> Job:
    """The final job: the campaign's statics (and converged k-point statics) → report."""
    from jobflow import JobConfig, OnMissing

    from polaronflow.workflows.campaign.analysis_job import analyse_campaign

    new = analyse_campaign(run_dirs, searches or None)
    new.name = naming.ANALYSIS
    # Runs even when some parents failed: the report lists what is missing and why.
    new.config = JobConfig(on_missing_references=OnMissing.NONE)
    new.metadata = {"polaronflow": {"role": str(naming.Role.ANALYSIS)}}
    return new


def build_campaign(options: CampaignOptions | None = None, **kwargs: Any) -> Flow:
    """Plan the campaign of ``options`` and build its Flow (what ``submit`` runs).

    Parameters
    ----------
    options
        Campaign options; or give them as keyword arguments.

    Returns
    -------
    jobflow.Flow
        One Flow named ``polaronflow-campaign``.
    """
    if options is None:
        options = make_options(**kwargs)
    elif kwargs:
        raise WorkflowError("give campaign options either as an object or as keywords, not both")
    return campaign_flow(plan_campaign(options))


def campaign_flow(plan: CampaignPlan) -> Flow:
    """The Flow of an existing plan (the same plan the dry run and the fingerprint walk)."""
    return PolaronCampaignMaker.from_options(plan.options).make(plan)
