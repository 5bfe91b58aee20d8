"""The campaign as a typed plan: what runs, in which order, from which structure.

:func:`plan_campaign` turns :class:`~polaronflow.workflows.campaign.options.CampaignOptions`
into a :class:`CampaignPlan` — the pristine host (unit cell, supercell), one
:class:`SystemPlan` per doped system (seed, U ramp, static) and one :class:`ReferencePlan` per
reference phase (relaxation, k-point convergence). Three consumers walk the same tree:

* the dry run (:func:`polaronflow.workflows.campaign.dryrun.write_inputs`), through
  :meth:`CampaignPlan.jobs`;
* the fingerprint (:func:`polaronflow.workflows.campaign.fingerprint.campaign_fingerprint`);
* the Flow builder (:class:`polaronflow.workflows.campaign.maker.PolaronCampaignMaker`),
  which makes a :class:`~polaronflow.workflows.campaign.ramp.URampMaker` of every system's
  :attr:`SystemPlan.ramp` and a
  :class:`~polaronflow.workflows.campaign.convergence.KPointConvergenceMaker` of every
  reference's :attr:`ReferencePlan.kconv`.

Start structures are built eagerly from the unrelaxed host (what the dry run writes); at run
time each job starts from its parent's output instead, which every :class:`PlannedJob` notes.
Nothing here imports jobflow or atomate2's job machinery, so ``polaronflow inputs`` stays fast.
Job names come from :mod:`polaronflow.naming`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from polaronflow import naming
from polaronflow.errors import WorkflowError
from polaronflow.naming import Role
from polaronflow.workflows.campaign.options import (
    CampaignOptions,
    DopantSpec,
    _check_nupdown,
    electrons_donated,
    make_options,
    parse_ion,
)
from polaronflow.workflows.campaign.planning import KPointConvergencePlan, RampPlan
from polaronflow.workflows.vasp.sets import ScanUSetGenerator
from polaronflow.workflows.vasp.spec import VaspJobSpec, job_record

if TYPE_CHECKING:
    from pymatgen.core import Structure


# --------------------------------------------------------------------- structure steps
def supercell_of(structure: Structure, scaling: Sequence[int]) -> Structure:
    """The supercell used for the pristine and doped runs (moments dropped: fresh start)."""
    from polaronflow.structures.host import make_supercell

    sc = make_supercell(structure, tuple(scaling))
    if "magmom" in sc.site_properties:
        sc.remove_site_property("magmom")
    return sc


@dataclass(frozen=True)
class SeedSettings:
    """How a doped system is made from the relaxed pristine supercell (see :func:`seed_system`).

    Parameters
    ----------
    ion
        Cation symbol, or ``"H"`` for protons.
    protons
        Number of protons (None for a cation).
    cavity
        A-site cavity index for a cation, or ``"auto"``.
    placement
        Relative placement of several protons (``far``/``near``).
    polarons
        ``"auto"`` or W site indices ``"37,0"``.
    nupdown
        Fixed NUPDOWN of the system (None: free); 0 makes the seed moments antiparallel.
    seed_moment
        Initial moment on each seed W (μB).
    stretch
        Fractional W–O bond stretch of the seed W (0: none).
    o_indices
        The O sites that carry the protons (a search candidate), or None for ``placement``.
    moments
        Signed moment per seed W (a search candidate's spin state), or None for the
        ``nupdown`` rule.
    """

    ion: str
    protons: int | None
    cavity: int | str
    placement: str
    polarons: str
    nupdown: int | None
    seed_moment: float
    stretch: float
    o_indices: tuple[int, ...] | None = None
    moments: tuple[float, ...] | None = None

    def kwargs(self) -> dict[str, Any]:
        """The settings as keyword arguments of :func:`seed_system` (and the seed job)."""
        return dataclasses.asdict(self)


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
    o_indices: Sequence[int] | None = None,
    moments: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Insert the dopant into ``host`` and seed its polarons.

    With ``moments`` each seed W gets its own signed moment (a search candidate's spin state).
    Otherwise, with ``nupdown = 0`` the seed moments alternate in sign (antiparallel
    polarons), so the start is compatible with the fixed total moment; else all are parallel.

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
        o_indices=list(o_indices) if o_indices else None,
        polarons=polarons,
        supercell=(1, 1, 1),
        host=host,
        seed_moment=seed_moment,
        stretch=stretch,
    )
    structure = result.structure
    if moments is not None:
        if len(moments) != len(result.seeds.w_indices):
            raise WorkflowError(
                f"{len(moments)} seed moments for {len(result.seeds.w_indices)} seed W sites"
            )
        values = list(structure.site_properties["magmom"])
        for w, m in zip(result.seeds.w_indices, moments, strict=True):
            values[w] = float(m)
        structure.add_site_property("magmom", values)
    elif nupdown == 0 and len(result.seeds.w_indices) > 1:
        moments = list(structure.site_properties["magmom"])
        for k, w in enumerate(result.seeds.w_indices):
            moments[w] = seed_moment if k % 2 == 0 else -seed_moment
        structure.add_site_property("magmom", moments)
    manifest = result.manifest()
    if moments is not None:
        for entry, m in zip(manifest["polaron_seeds"], moments, strict=True):
            entry["seed_moment"] = float(m)
    manifest["nupdown"] = nupdown
    manifest["magmom_nonzero"] = {
        str(i): m for i, m in enumerate(structure.site_properties["magmom"]) if m
    }
    return {"structure": structure, "manifest": manifest}


# --------------------------------------------------------------------------- the plan
@dataclass
class PlannedJob:
    """One job as the dry run sees it: a name, what it is, its start structure.

    Parameters
    ----------
    name
        Job name (:mod:`polaronflow.naming`).
    role
        What the job is.
    structure
        Its start structure as the dry run builds it (from the unrelaxed host).
    parents
        Jobs it waits for.
    spec
        The VASP job (None for structure-only jobs and the k-point loop itself).
    note
        What differs at run time.
    manifest
        Doping and seeds (seed jobs).
    loop
        For the first static of a k-point loop: the loop's name.
    """

    name: str
    role: Role
    structure: Structure
    parents: list[str] = field(default_factory=list)
    spec: VaspJobSpec | None = None
    note: str = ""
    manifest: dict[str, Any] | None = None
    loop: str | None = None


@dataclass
class PristinePlan:
    """The pristine host: unit-cell relaxation, supercell, its relaxation and static."""

    unit_cell: Structure
    unit_relax: VaspJobSpec
    scaling: tuple[int, int, int]
    supercell: Structure
    supercell_relax: VaspJobSpec
    supercell_static: VaspJobSpec

    def jobs(self) -> list[PlannedJob]:
        """The pristine jobs in run order."""
        relax, static = naming.SUPERCELL_RELAX, naming.SUPERCELL_STATIC
        return [
            PlannedJob(naming.UNIT_RELAX, Role.UNIT_RELAX, self.unit_cell, spec=self.unit_relax),
            PlannedJob(
                naming.SUPERCELL,
                Role.SUPERCELL,
                self.supercell,
                parents=[naming.UNIT_RELAX],
                note=f"built from the unrelaxed unit cell here; from {naming.UNIT_RELAX}'s "
                "output at run time",
            ),
            PlannedJob(
                relax,
                Role.SUPERCELL_RELAX,
                self.supercell,
                parents=[naming.SUPERCELL],
                spec=self.supercell_relax,
                note="written from the unrelaxed supercell; at run time from the relaxed "
                "unit cell's",
            ),
            PlannedJob(
                static,
                Role.SUPERCELL_STATIC,
                self.supercell,
                parents=[relax],
                spec=self.supercell_static,
                note=f"written from the unrelaxed supercell; at run time from {relax}",
            ),
        ]


@dataclass
class SystemPlan:
    """One doped system: the dopant and polaron seeds, the U ramp and the static.

    Parameters
    ----------
    tag
        Job-name prefix (:func:`polaronflow.naming.system_tag`).
    dopant
        The dopant entry.
    electrons
        Electrons the dopant donates (polarons expected).
    seed
        How the seed job places the dopant and the seeds at run time.
    structure
        The seeded start structure as the dry run builds it (unrelaxed supercell).
    manifest
        Doping and seeds of that start structure.
    ramp
        The U ramp and its static (names, input sets, records).
    """

    tag: str
    dopant: DopantSpec
    electrons: int
    seed: SeedSettings
    structure: Structure
    manifest: dict[str, Any]
    ramp: RampPlan

    @property
    def seed_name(self) -> str:
        """Name of the seed job."""
        return naming.seed_name(self.tag)

    def jobs(self) -> list[PlannedJob]:
        """The seed job, then every ramp step and the static, in run order."""
        jobs = [
            PlannedJob(
                self.seed_name,
                Role.SEED,
                self.structure,
                parents=[naming.SUPERCELL_RELAX],
                manifest=self.manifest,
                note="dopant and seeds placed in the unrelaxed supercell here; in the "
                "relaxed pristine supercell at run time",
            )
        ]
        previous = self.seed_name
        for k, spec in enumerate(self.ramp.steps()):
            note = ""
            if k:
                note = (
                    "written from the seeded start structure; at run time this job starts "
                    f"from {previous}'s CONTCAR and WAVECAR (the WAVECAR carries the polarons; "
                    "VASP ignores MAGMOM when it reads one)"
                )
            role = Role.RAMP_STATIC if spec.calc == "static" else Role.RAMP_STEP
            jobs.append(
                PlannedJob(
                    spec.name, role, self.structure, parents=[previous], spec=spec, note=note
                )
            )
            previous = spec.name
        return jobs


@dataclass
class ReferencePlan:
    """One reference phase: its relaxation and the k-point convergence of its energy."""

    phase: str
    structure: Structure
    molecule: bool
    relax: VaspJobSpec
    kconv: KPointConvergencePlan

    @property
    def loop_name(self) -> str:
        """Name of the k-point loop's check jobs."""
        return naming.kpoint_loop_name(self.kconv.name)

    def jobs(self) -> list[PlannedJob]:
        """The relaxation, then the loop's first static (the loop adds the rest at run time)."""
        mesh = self.kconv.first_mesh(self.structure)
        first = naming.kpoint_static_name(self.kconv.name, mesh)
        if self.molecule:
            note = "molecule: one Γ-only static"
        else:
            note = (
                f"first static {'x'.join(map(str, mesh))} shown; denser meshes are added at run "
                f"time until |dE| < {self.kconv.tolerance * 1000:g} meV/atom"
            )
        return [
            PlannedJob(self.relax.name, Role.REFERENCE_RELAX, self.structure, spec=self.relax),
            PlannedJob(
                first,
                Role.KPOINT_STATIC,
                self.structure,
                parents=[self.relax.name],
                spec=self.kconv.static_spec(first, mesh),
                note=note,
                loop=self.loop_name,
            ),
        ]


@dataclass
class ScreenedCandidate:
    """One candidate of a ground-state search: its seeds, its screening and its full ramp.

    Parameters
    ----------
    number
        Candidate number k (1-based), in enumeration order.
    candidate
        The enumerated candidate (:class:`polaronflow.structures.candidates.Candidate`).
    seed
        How its seed job places the dopant and the seeds in the relaxed supercell.
    structure
        The seeded start structure as the dry run builds it.
    manifest
        Doping and seeds of that start structure.
    screen
        The screening ramp (cheap settings; no static), ``T-screen{k}``.
    full
        The full ramp and static if the candidate is selected, ``T-c{k}``.
    """

    number: int
    candidate: Any
    seed: SeedSettings
    structure: Structure
    manifest: dict[str, Any]
    screen: RampPlan
    full: RampPlan

    @property
    def seed_name(self) -> str:
        """Name of the candidate's seed job (for its screening)."""
        return naming.seed_name(self.screen.name)

    def jobs(self) -> list[PlannedJob]:
        """The seed job and the screening steps."""
        jobs = [
            PlannedJob(
                self.seed_name,
                Role.SEED,
                self.structure,
                parents=[naming.SUPERCELL_RELAX],
                manifest=self.manifest,
                note=f"search candidate {self.candidate.id}: {self.candidate.count} "
                "configuration(s) in its class",
            )
        ]
        previous = self.seed_name
        for spec in self.screen.steps():
            jobs.append(
                PlannedJob(
                    spec.name,
                    Role.RAMP_STEP,
                    self.structure,
                    parents=[previous],
                    spec=spec,
                    note="screening (cheaper settings, ranking only)",
                )
            )
            previous = spec.name
        return jobs


@dataclass
class SearchPlan:
    """A ground-state search for one dopant: screen every candidate, keep the lowest few.

    Parameters
    ----------
    label
        The dopant label (``mg``, ``h2``).
    dopant
        The dopant entry.
    electrons
        Electrons donated (polarons expected).
    keep
        Candidates that get the full ramp and static.
    candidates
        Every screened candidate.
    summary
        Counts of the enumeration (configurations, symmetry orbits, classes, tolerance, the
        candidates left out by ``search_limit``).
    """

    label: str
    dopant: DopantSpec
    electrons: int
    keep: int
    candidates: list[ScreenedCandidate]
    summary: dict[str, Any]

    @property
    def select_name(self) -> str:
        """Name of the job that ranks the screened candidates."""
        return naming.select_name(self.label)

    def jobs(self, host: Structure) -> list[PlannedJob]:
        """Every candidate's seed and screening, then the selection."""
        jobs: list[PlannedJob] = []
        for c in self.candidates:
            jobs += c.jobs()
        last = [c.screen.steps()[-1].name for c in self.candidates]
        jobs.append(
            PlannedJob(
                self.select_name,
                Role.SELECT,
                host,
                parents=last,
                note=f"ranks {len(self.candidates)} screened candidates by energy; at run time "
                f"the {self.keep} lowest localised ones get the full ramp and static "
                f"({self.label}-c<k>-ramp-u… , {self.label}-c<k>-static)",
            )
        )
        return jobs


@dataclass
class CampaignPlan:
    """The whole campaign: pristine host, doped systems, references (see module docstring)."""

    options: CampaignOptions
    pristine: PristinePlan
    systems: list[SystemPlan]
    references: list[ReferencePlan]
    searches: list[SearchPlan] = field(default_factory=list)

    def jobs(self) -> Iterator[PlannedJob]:
        """Every job known before the run, in dependency order."""
        yield from self.pristine.jobs()
        for system in self.systems:
            yield from system.jobs()
        for search in self.searches:
            yield from search.jobs(self.pristine.supercell)
        for reference in self.references:
            yield from reference.jobs()

    def job_names(self) -> list[str]:
        """Names of :meth:`jobs`, in order."""
        return [j.name for j in self.jobs()]


def _host(options: CampaignOptions) -> Structure:
    from polaronflow.structures.host import gamma_wo3, load_host

    host = load_host(options.host) if options.host is not None else gamma_wo3()
    # One block per element in the POSCAR (a CIF may interleave them). atomate2's generator
    # writes sites in the order given, so the indices (cavities, seed W) of the dry run are
    # those of the real run.
    return host.get_sorted_structure()


def campaign_generators(options: CampaignOptions) -> tuple[ScanUSetGenerator, ScanUSetGenerator]:
    """The relaxation and static input-set templates of a campaign (parameter file, POTCARs)."""
    params = str(options.parameters_file) if options.parameters_file else None
    potcars = dict(options.potcars)
    return (
        ScanUSetGenerator(calc="relax", parameters_file=params, potcar_overrides=potcars),
        ScanUSetGenerator(calc="static", parameters_file=params, potcar_overrides=potcars),
    )


def _spec(
    name: str, role: Role, calc: str, template: ScanUSetGenerator, record: dict, **updates: Any
) -> VaspJobSpec:
    """A VASP job of the plan: ``template`` with ``updates``, recorded with its role."""
    generator = dataclasses.replace(template, **updates)
    return VaspJobSpec(name, calc, generator, job_record(name, str(role), **record))  # type: ignore[arg-type]


def plan_campaign(options: CampaignOptions | None = None, **kwargs: Any) -> CampaignPlan:
    """Plan the campaign of ``options`` (see the module docstring).

    Parameters
    ----------
    options
        Campaign options; or give them as keyword arguments.

    Returns
    -------
    CampaignPlan

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
    phases: dict[str, Structure] = {}
    if options.references:
        for d in dopants:
            for phase, structure in references_for_ion(d.ion).items():
                phases.setdefault(phase, structure)

    relax, static = campaign_generators(options)
    u_prod = options.schedule[-1]

    host = _host(options)
    supercell = supercell_of(host, options.supercell)
    hubbard = {"hubbard_u": {"W": u_prod}}
    unit_relax = _spec(
        naming.UNIT_RELAX, Role.UNIT_RELAX, "relax", relax, {"u": u_prod, "isif": 3},
        isif=3, **hubbard,
    )  # fmt: skip
    sc_relax = _spec(
        naming.SUPERCELL_RELAX, Role.SUPERCELL_RELAX, "relax", relax, {"u": u_prod, "isif": 3},
        isif=3, **hubbard,
    )  # fmt: skip
    sc_static = _spec(
        naming.SUPERCELL_STATIC, Role.SUPERCELL_STATIC, "static", static, {"u": u_prod}, **hubbard
    )
    pristine = PristinePlan(
        unit_cell=host,
        unit_relax=unit_relax,
        scaling=tuple(options.supercell),  # type: ignore[arg-type]
        supercell=supercell,
        supercell_relax=sc_relax,
        supercell_static=sc_static,
    )

    systems: list[SystemPlan] = []
    searches: list[SearchPlan] = []
    several = len(options.polarons) > 1
    for dopant in dopants:
        if options.search:
            searches.append(_search_plan(options, dopant, supercell, relax, static))
            continue
        for ci, polarons in enumerate(options.polarons, start=1):
            for nupdown in options.nupdown:
                tag = naming.system_tag(dopant.label, ci if several else None, nupdown)
                seed = SeedSettings(
                    ion=dopant.ion,
                    protons=dopant.protons,
                    cavity=options.cavity,
                    placement=options.placement,
                    polarons=polarons,
                    nupdown=nupdown,
                    seed_moment=options.seed_moment,
                    stretch=options.stretch,
                )
                seeded = seed_system(supercell, **seed.kwargs())
                ramp = RampPlan(
                    name=tag,
                    schedule=options.schedule,
                    final_isif=options.final_isif,
                    nupdown=nupdown,
                    relax_generator=relax,
                    static_generator=static,
                    walltime=options.walltime,
                    vasp_cmd=options.vasp_cmd,
                    potcar_spec=options.potcar_spec,
                    record_fields={
                        "ion": dopant.ion,
                        "protons": dopant.protons,
                        "polarons": polarons,
                        "system": tag,
                    },
                )
                systems.append(
                    SystemPlan(
                        tag=tag,
                        dopant=dopant,
                        electrons=electrons_donated(dopant),
                        seed=seed,
                        structure=seeded["structure"],
                        manifest=seeded["manifest"],
                        ramp=ramp,
                    )
                )

    references: list[ReferencePlan] = []
    for phase, structure in phases.items():
        molecule = bool(structure.properties.get("molecule", False))
        isif = 2 if molecule else 3
        ref_relax = _spec(
            naming.reference_relax_name(phase), Role.REFERENCE_RELAX, "relax", relax,
            {"phase": phase, "isif": isif, "molecule": molecule}, isif=isif, molecule=molecule,
        )  # fmt: skip
        # References need energies only: no CHGCAR for every mesh of the loop.
        ref_static = dataclasses.replace(
            static, molecule=molecule, user_incar_settings={"LCHARG": False}
        )
        kconv = KPointConvergencePlan(
            name=naming.kpoint_prefix(phase),
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
        references.append(
            ReferencePlan(
                phase=phase, structure=structure, molecule=molecule, relax=ref_relax, kconv=kconv
            )
        )
    return CampaignPlan(
        options=options,
        pristine=pristine,
        systems=systems,
        references=references,
        searches=searches,
    )


def _ramp(
    options: CampaignOptions,
    tag: str,
    nupdown: int | None,
    relax: ScanUSetGenerator,
    static: ScanUSetGenerator,
    record: dict[str, Any],
    **changes: Any,
) -> RampPlan:
    settings: dict[str, Any] = {
        "name": tag,
        "schedule": options.schedule,
        "final_isif": options.final_isif,
        "nupdown": nupdown,
        "relax_generator": relax,
        "static_generator": static,
        "walltime": options.walltime,
        "vasp_cmd": options.vasp_cmd,
        "potcar_spec": options.potcar_spec,
        "record_fields": record,
    }
    settings.update(changes)
    return RampPlan(**settings)


def screening_generator(options: CampaignOptions, relax: ScanUSetGenerator) -> ScanUSetGenerator:
    """The cheaper relaxation settings of a search's screening (documented, recorded)."""
    incar = dict(relax.user_incar_settings or {})
    # Our choice: a looser force criterion and fewer ionic steps rank the configurations;
    # 1e-5 eV SCF is enough at 50 meV/Å. No CHGCAR: the screening keeps energies and moments.
    incar.update(EDIFFG=options.screen_ediffg, NSW=options.screen_nsw, EDIFF=1e-5, LCHARG=False)
    return dataclasses.replace(
        relax, user_incar_settings=incar, kpoint_mesh=tuple(options.screen_kpoints)
    )


def _search_plan(
    options: CampaignOptions,
    dopant: DopantSpec,
    supercell: Structure,
    relax: ScanUSetGenerator,
    static: ScanUSetGenerator,
) -> SearchPlan:
    from polaronflow.structures.candidates import candidate_set

    found = candidate_set(
        supercell,
        ion=None if dopant.protons else dopant.ion,
        protons=dopant.protons,
        shells=tuple(options.search_shells),
        tolerance=options.search_tolerance or None,
        seed_moment=options.seed_moment,
    )
    chosen = found.candidates
    if options.search_limit is not None:
        chosen = chosen[: options.search_limit]
    screen_relax = screening_generator(options, relax)
    # The screening relaxes at the localising first U and at the production U (two steps,
    # the WAVECAR handed on as in the full ramp), ions only; its last energy ranks.
    schedule = tuple(dict.fromkeys((options.schedule[0], options.schedule[-1])))
    candidates: list[ScreenedCandidate] = []
    for k, cand in enumerate(chosen, start=1):
        kwargs = cand.build_kwargs()
        seed = SeedSettings(
            ion=dopant.ion,
            protons=dopant.protons,
            cavity=kwargs.get("cavity", "auto"),
            placement=options.placement,
            polarons=",".join(str(i) for i in kwargs["polarons"]),
            nupdown=cand.nupdown,
            seed_moment=options.seed_moment,
            stretch=options.stretch,
            o_indices=tuple(kwargs["o_indices"]) if kwargs.get("o_indices") else None,
            moments=tuple(s.moment for s in cand.seeds),
        )
        seeded = seed_system(supercell, **seed.kwargs())
        seeded["manifest"]["candidate"] = cand.model_dump(mode="json")
        record = {
            "ion": dopant.ion,
            "protons": dopant.protons,
            "search": dopant.label,
            "candidate": cand.id,
            "candidate_number": k,
        }
        candidates.append(
            ScreenedCandidate(
                number=k,
                candidate=cand,
                seed=seed,
                structure=seeded["structure"],
                manifest=seeded["manifest"],
                screen=_ramp(
                    options,
                    naming.screen_tag(dopant.label, k, cand.nupdown),
                    cand.nupdown,
                    screen_relax,
                    static,
                    {**record, "screening": True},
                    schedule=schedule,
                    final_isif=2,
                    with_static=False,
                ),
                full=_ramp(
                    options,
                    naming.system_tag(dopant.label, k, cand.nupdown),
                    cand.nupdown,
                    relax,
                    static,
                    {**record, "screening": False},
                ),
            )
        )
    summary = {
        "n_configurations": found.n_configurations,
        "n_classes": found.n_classes,
        "n_candidates": len(found.candidates),
        "n_screened": len(candidates),
        "search_limit": options.search_limit,
        "tolerance": found.tolerance,
        "shells": list(found.shells),
        "groups": [g.model_dump(mode="json") for g in found.groups],
    }
    return SearchPlan(
        label=dopant.label,
        dopant=dopant,
        electrons=electrons_donated(dopant),
        keep=options.search_keep,
        candidates=candidates,
        summary=summary,
    )
