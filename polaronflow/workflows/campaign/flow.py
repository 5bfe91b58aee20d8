"""The paper's whole first-principles campaign as one jobflow Flow (and as a dry-run plan).

Run order and job names (``T`` is a doped system's tag, see :func:`system_tag`)::

    wo3-unit-relax           32-atom γ-WO3, SCAN+U at the production U, ISIF 3
    wo3-supercell            (python) 2x2x2 supercell of the relaxed cell
    wo3-supercell-relax      pristine 256-atom supercell, ISIF 3
    wo3-supercell-static     pristine static (DOS, CHGCAR)
    T-seed                   (python) dopant into the relaxed supercell + polaron seeds
    T-ramp-u9 ... T-ramp-u5  U ramp (WAVECAR, CONTCAR and moments handed on)
    T-static                 static at the final U (LORBIT 11, NEDOS, LCHARG)
    ref-P-relax              reference phase P (MgO, Mg, O2, H2, H2O ...), no U (no W)
    ref-P-kconv              k-point convergence loop (statics ref-P-kconv-k{n1}x{n2}x{n3})

``T`` is ``mg`` for one Mg, ``h2`` for two protons, then ``-c{i}`` when several polaron
configurations are asked for and ``-nupdown{N}`` for a fixed NUPDOWN (e.g. ``mg-c2-nupdown0``).
The production U (unit cell, supercell) is the last value of the U schedule.

:func:`plan_campaign` returns the jobs as :class:`PlannedJob` records with eagerly built start
structures (used by ``polaronflow inputs``); :func:`build_campaign` turns the same plan into a
Flow whose jobs are wired to their parents' outputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from polaronflow.errors import WorkflowError
from polaronflow.naming import system_tag
from polaronflow.workflows.campaign.options import (
    CampaignOptions,
    _check_nupdown,
    make_options,
    parse_ion,
)
from polaronflow.workflows.campaign.planning import (
    KPointConvergencePlan,
    RampPlan,
)
from polaronflow.workflows.vasp.sets import ScanUSetGenerator
from polaronflow.workflows.vasp.spec import VaspJobSpec, job_record

if TYPE_CHECKING:
    from jobflow import Flow, Job
    from pymatgen.core import Structure


# --------------------------------------------------------------------- structure steps
def supercell_of(structure: Structure, scaling: Sequence[int]) -> Structure:
    """The supercell used for the pristine and doped runs (moments dropped: fresh start)."""
    from polaronflow.structures.host import make_supercell

    sc = make_supercell(structure, tuple(scaling))
    if "magmom" in sc.site_properties:
        sc.remove_site_property("magmom")
    return sc


def seed_system(
    host: Structure,
    ion: str,
    protons: int | None,
    cavity: int | str,
    placement: str,
    polarons: str,
    nupdown: int | None,
    seed_moment: float,
    stretch: float,
) -> dict[str, Any]:
    """Insert the dopant into ``host`` and seed its polarons.

    With ``nupdown = 0`` the seed moments alternate in sign (antiparallel polarons), so the
    start is compatible with the fixed total moment; otherwise all seeds are parallel.

    Returns
    -------
    dict
        ``structure`` (seeded, with ``magmom``) and ``manifest`` (doping and seeds).
    """
    from polaronflow.structures.builder import build_doped

    result = build_doped(
        ion=None if protons else ion,
        protons=protons,
        cavity=cavity,
        placement=placement,  # type: ignore[arg-type]
        polarons=polarons,
        supercell=(1, 1, 1),
        host=host,
        seed_moment=seed_moment,
        stretch=stretch,
    )
    structure = result.structure
    if nupdown == 0 and len(result.seeds.w_indices) > 1:
        moments = list(structure.site_properties["magmom"])
        for k, w in enumerate(result.seeds.w_indices):
            moments[w] = seed_moment if k % 2 == 0 else -seed_moment
        structure.add_site_property("magmom", moments)
    manifest = result.manifest()
    manifest["nupdown"] = nupdown
    manifest["magmom_nonzero"] = {
        str(i): m for i, m in enumerate(structure.site_properties["magmom"]) if m
    }
    return {"structure": structure, "manifest": manifest}


# --------------------------------------------------------------------------- the plan
@dataclass
class PlannedJob:
    """One job of the campaign, with an eagerly built start structure for dry runs."""

    name: str
    kind: Literal["vasp", "supercell", "seed", "kconv"]
    structure: Structure
    parents: list[str] = field(default_factory=list)
    #: job whose output structure is this job's input (None: ``structure`` itself).
    structure_from: str | None = None
    #: job whose run folder is handed on (CONTCAR, WAVECAR).
    prev_dir_from: str | None = None
    #: the VASP job (kind "vasp").
    spec: VaspJobSpec | None = None
    #: the convergence loop (kind "kconv").
    kconv: KPointConvergencePlan | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    manifest: dict[str, Any] | None = None


def _host(options: CampaignOptions) -> Structure:
    from polaronflow.structures.host import gamma_wo3, load_host

    host = load_host(options.host) if options.host is not None else gamma_wo3()
    # One block per element in the POSCAR (a CIF may interleave them). atomate2's generator
    # writes sites in the order given, so the indices (cavities, seed W) of the dry run are
    # those of the real run.
    return host.get_sorted_structure()


def _generators(options: CampaignOptions) -> tuple[ScanUSetGenerator, ScanUSetGenerator]:
    params = str(options.parameters_file) if options.parameters_file else None
    potcars = dict(options.potcars)
    return (
        ScanUSetGenerator(calc="relax", parameters_file=params, potcar_overrides=potcars),
        ScanUSetGenerator(calc="static", parameters_file=params, potcar_overrides=potcars),
    )


def _spec(name: str, calc: str, template: ScanUSetGenerator, record: dict, **updates: Any):
    return VaspJobSpec(name, calc, dataclasses.replace(template, **updates), record)  # type: ignore[arg-type]


def plan_campaign(options: CampaignOptions | None = None, **kwargs: Any) -> list[PlannedJob]:
    """Return the campaign's jobs in dependency order.

    Parameters
    ----------
    options
        Campaign options; or give them as keyword arguments.

    Returns
    -------
    list of PlannedJob
        Start structures are built from the unrelaxed host (dry-run view).

    Raises
    ------
    WorkflowError, InputError
        Bad options, an ion without reference phases, a host that is not WO3-like, ...
    """
    from polaronflow.structures.references import references_for_ion

    if options is None:
        options = make_options(**kwargs)
    elif kwargs:
        raise WorkflowError("give campaign options either as an object or as keywords, not both")
    dopants = [parse_ion(i) for i in options.ions]
    if len({d.label for d in dopants}) != len(dopants):
        raise WorkflowError(f"ions {options.ions} repeat a dopant")
    for d in dopants:
        _check_nupdown(d, options.nupdown)
    # Fail early (before anything is built) for an ion without reference phases.
    references: dict[str, tuple[Structure, str]] = {}
    if options.references:
        for d in dopants:
            for phase, structure in references_for_ion(d.ion).items():
                references.setdefault(phase, (structure, d.ion))

    relax, static = _generators(options)
    u_prod = options.schedule[-1]
    plan: list[PlannedJob] = []

    host = _host(options)
    name = "wo3-unit-relax"
    rec = job_record(name, "unit-relax", u=u_prod, isif=3)
    plan.append(
        PlannedJob(
            name,
            "vasp",
            host,
            spec=_spec(name, "relax", relax, rec, hubbard_u={"W": u_prod}, isif=3),
        )
    )
    supercell = supercell_of(host, options.supercell)
    plan.append(
        PlannedJob(
            "wo3-supercell",
            "supercell",
            supercell,
            parents=[name],
            structure_from=name,
            kwargs={"scaling": list(options.supercell)},
            note="built from the unrelaxed unit cell here; from wo3-unit-relax's output at "
            "run time",
        )
    )
    name = "wo3-supercell-relax"
    rec = job_record(name, "supercell-relax", u=u_prod, isif=3)
    plan.append(
        PlannedJob(
            name,
            "vasp",
            supercell,
            parents=["wo3-supercell"],
            structure_from="wo3-supercell",
            spec=_spec(name, "relax", relax, rec, hubbard_u={"W": u_prod}, isif=3),
            note="written from the unrelaxed supercell; at run time from the relaxed unit cell's",
        )
    )
    name = "wo3-supercell-static"
    rec = job_record(name, "supercell-static", u=u_prod)
    plan.append(
        PlannedJob(
            name,
            "vasp",
            supercell,
            parents=["wo3-supercell-relax"],
            structure_from="wo3-supercell-relax",
            prev_dir_from="wo3-supercell-relax",
            spec=_spec(name, "static", static, rec, hubbard_u={"W": u_prod}),
            note="written from the unrelaxed supercell; at run time from wo3-supercell-relax",
        )
    )

    several = len(options.polarons) > 1
    for dopant in dopants:
        for ci, polarons in enumerate(options.polarons, start=1):
            for nupdown in options.nupdown:
                tag = system_tag(dopant.label, ci if several else None, nupdown)
                seed_kwargs = {
                    "ion": dopant.ion,
                    "protons": dopant.protons,
                    "cavity": options.cavity,
                    "placement": options.placement,
                    "polarons": polarons,
                    "nupdown": nupdown,
                    "seed_moment": options.seed_moment,
                    "stretch": options.stretch,
                }
                seeded = seed_system(supercell, **seed_kwargs)
                seed_name = f"{tag}-seed"
                plan.append(
                    PlannedJob(
                        seed_name,
                        "seed",
                        seeded["structure"],
                        parents=["wo3-supercell-relax"],
                        structure_from="wo3-supercell-relax",
                        kwargs=seed_kwargs,
                        manifest=seeded["manifest"],
                        note="dopant and seeds placed in the unrelaxed supercell here; in the "
                        "relaxed pristine supercell at run time",
                    )
                )
                ramp = RampPlan(
                    name=tag,
                    schedule=options.schedule,
                    final_isif=options.final_isif,
                    nupdown=nupdown,
                    relax_generator=relax,
                    static_generator=static,
                    record_fields={
                        "ion": dopant.ion,
                        "protons": dopant.protons,
                        "polarons": polarons,
                        "system": tag,
                    },
                )
                previous = seed_name
                for k, step in enumerate(ramp.steps()):
                    first = k == 0
                    plan.append(
                        PlannedJob(
                            step.name,
                            "vasp",
                            seeded["structure"],
                            parents=[previous],
                            structure_from=previous,
                            prev_dir_from=None if first else previous,
                            spec=step,
                            note=""
                            if first
                            else (
                                "written from the seeded start structure; at run time this job "
                                f"starts from {previous}'s CONTCAR, moments and WAVECAR"
                            ),
                        )
                    )
                    previous = step.name

    for phase, (structure, _ion) in references.items():
        molecule = bool(structure.properties.get("molecule", False))
        name = f"ref-{phase}-relax"
        isif = 2 if molecule else 3
        rec = job_record(name, "reference-relax", phase=phase, isif=isif, molecule=molecule)
        plan.append(
            PlannedJob(
                name,
                "vasp",
                structure,
                spec=_spec(name, "relax", relax, rec, isif=isif, molecule=molecule),
            )
        )
        # References need energies only: no CHGCAR for every mesh of the loop.
        ref_static = dataclasses.replace(
            static, molecule=molecule, user_incar_settings={"LCHARG": False}
        )
        kconv = KPointConvergencePlan(
            name=f"ref-{phase}",
            static_generator=ref_static,
            walltime=options.walltime,
            vasp_cmd=options.vasp_cmd,
            potcar_spec=options.potcar_spec,
            start_length=options.kconv_start_length,
            length_step=options.kconv_step,
            max_steps=options.kconv_max_steps,
            molecule=molecule,
            record_fields={"phase": phase, "molecule": molecule},
        )
        mesh = kconv.first_mesh(structure)
        plan.append(
            PlannedJob(
                f"ref-{phase}-kconv",
                "kconv",
                structure,
                parents=[name],
                structure_from=name,
                kconv=kconv,
                note="molecule: one Γ-only static"
                if molecule
                else f"first static {'x'.join(map(str, mesh))} shown; denser meshes are added "
                f"at run time until |dE| < {kconv.tolerance * 1000:g} meV/atom",
            )
        )
    return plan


def _output_structure(jobs: dict[str, Job], planned: dict[str, PlannedJob], name: str):
    kind = planned[name].kind
    out = jobs[name].output
    if kind == "vasp":
        return out.structure
    if kind == "seed":
        return out["structure"]
    return out


def build_campaign(options: CampaignOptions | None = None, **kwargs: Any) -> Flow:
    """Build the campaign Flow (see the module docstring for job names and order).

    Parameters
    ----------
    options
        Campaign options; or give them as keyword arguments.

    Returns
    -------
    jobflow.Flow
        One flow named ``polaronflow-campaign``; each job's metadata holds its record.
    """
    if options is None:
        options = make_options(**kwargs)
    elif kwargs:
        raise WorkflowError("give campaign options either as an object or as keywords, not both")
    return flow_from_plan(plan_campaign(options), options)


#: Jobs whose polarons are checked after the run (see :mod:`polaronflow.workflows.vasp.checks`).
_CHECKED_ROLES = ("ramp-step", "ramp-static")


def flow_from_plan(plan: list[PlannedJob], options: CampaignOptions | None = None) -> Flow:
    """Turn a :func:`plan_campaign` list into a Flow wired to parents' outputs.

    Parameters
    ----------
    plan
        The planned jobs.
    options
        Supplies the run-time settings (wall time, VASP command, POTCAR.spec).

    Returns
    -------
    jobflow.Flow
        The campaign flow, named ``polaronflow-campaign``.
    """
    from jobflow import Flow

    from polaronflow.workflows.campaign.convergence import KPointConvergenceMaker
    from polaronflow.workflows.campaign.steps import seed_job, supercell_job
    from polaronflow.workflows.vasp.checks import with_polaron_check
    from polaronflow.workflows.vasp.makers import make_job

    options = options or CampaignOptions()
    planned = {p.name: p for p in plan}
    jobs: dict[str, Job] = {}
    for p in plan:
        structure = (
            _output_structure(jobs, planned, p.structure_from)
            if p.structure_from is not None
            else p.structure
        )
        if p.kind == "vasp":
            prev_dir = jobs[p.prev_dir_from].output.dir_name if p.prev_dir_from else None
            maker = p.spec.maker(options.walltime, options.vasp_cmd, options.potcar_spec)
            if p.spec.copy_wavecar and p.prev_dir_from is None:  # pragma: no cover - plan bug
                raise WorkflowError(f"{p.name} copies a WAVECAR but has no previous run")
            if options.polaron_check and p.spec.record.get("role") in _CHECKED_ROLES:
                maker = with_polaron_check(
                    maker, reseed_on_delocalisation=options.reseed_on_delocalisation
                )
            new = make_job(maker, structure, prev_dir=prev_dir)
        elif p.kind == "supercell":
            new = supercell_job(structure, p.kwargs["scaling"])
        elif p.kind == "seed":
            new = seed_job(structure, **p.kwargs)
        elif p.kind == "kconv" and p.kconv is not None:
            plan_fields = {f.name: getattr(p.kconv, f.name) for f in dataclasses.fields(p.kconv)}
            new = KPointConvergenceMaker(**plan_fields).make(structure)
        else:  # pragma: no cover - PlannedJob.kind is a Literal
            raise WorkflowError(f"unknown planned job kind {p.kind!r}")
        new.name = p.name
        new.metadata = {**(new.metadata or {}), "polaronflow_job": p.name}
        jobs[p.name] = new
    if options.analysis:
        analysis = _analysis_job(jobs, planned)
        jobs[analysis.name] = analysis
    return Flow(list(jobs.values()), name="polaronflow-campaign")


def _analysis_job(jobs: dict[str, Job], planned: dict[str, PlannedJob]) -> Job:
    """The final job: every VASP run folder (and converged k-point static) → analysis report."""
    from jobflow import JobConfig, OnMissing

    # imported here: jobflow is not needed (nor imported) by the dry run
    from polaronflow.workflows.campaign.analysis_job import ANALYSIS_JOB_NAME, analyse_campaign

    # Only what the report reads: resolving a reference loads the parent's whole task
    # document, so the ramp steps (not needed for the reproduction) are left out.
    wanted = ("wo3-unit-relax",)
    run_dirs = {
        name: jobs[name].output.dir_name
        for name, p in planned.items()
        if p.kind == "kconv" or name in wanted or (p.kind == "vasp" and name.endswith("-static"))
    }
    new = analyse_campaign(run_dirs)
    new.name = ANALYSIS_JOB_NAME
    # Runs even when some parents failed: the report lists what is missing.
    new.config = JobConfig(on_missing_references=OnMissing.NONE)
    new.metadata = {"polaronflow_job": ANALYSIS_JOB_NAME}
    return new
