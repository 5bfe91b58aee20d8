"""Job planning without jobflow: the U ramp's and the k-point loop's jobs as specs.

``polaronflow inputs`` (a dry run) only needs names, input sets and records; keeping that
logic here, free of jobflow/atomate2-job imports, keeps the dry run fast. The jobflow makers
:class:`~polaronflow.workflows.campaign.ramp.URampMaker` and
:class:`~polaronflow.workflows.campaign.convergence.KPointConvergenceMaker` inherit these
classes and add ``make()``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from polaronflow import naming
from polaronflow.errors import WorkflowError
from polaronflow.naming import Role, format_u
from polaronflow.workflows.vasp.sets import ScanUSetGenerator, is_molecule, kpoint_mesh
from polaronflow.workflows.vasp.spec import VaspJobSpec, job_record

if TYPE_CHECKING:
    from jobflow import Maker
    from pymatgen.core import Structure

#: The paper's ramp (eV): start at 9, 1 eV steps (step size not stated; PAPER.md §1) to 5.
DEFAULT_SCHEDULE: tuple[float, ...] = (9.0, 8.0, 7.0, 6.0, 5.0)

#: The paper's convergence criterion: 0.02 meV/atom, in eV/atom.
DEFAULT_TOLERANCE = 2e-5


def validate_schedule(schedule: Sequence[float] | str) -> tuple[float, ...]:
    """Check a U schedule and return it as floats.

    Parameters
    ----------
    schedule
        U values in eV, in run order, or a comma-separated string ("9,8,7,6,5"). Either
        direction is allowed (the paper ramps down, Meredig et al. ramp up from 0).

    Returns
    -------
    tuple of float
        The schedule.

    Raises
    ------
    WorkflowError
        When it is empty, holds a non-number, NaN, infinity, a negative value or a repeat.
    """
    if isinstance(schedule, str):
        parts = [p.strip() for p in schedule.replace(";", ",").split(",") if p.strip()]
    else:
        try:
            parts = list(schedule)
        except TypeError:
            raise WorkflowError(
                f"U schedule must be a list of U values in eV, got {schedule!r}"
            ) from None
    if not parts:
        raise WorkflowError("U schedule is empty; give at least one U value in eV, e.g. 9,8,7,6,5")
    values: list[float] = []
    for p in parts:
        try:
            u = float(p)
        except (TypeError, ValueError):
            raise WorkflowError(f"U schedule entry {p!r} is not a number (eV)") from None
        if not math.isfinite(u):
            raise WorkflowError(f"U schedule entry {p!r} is not finite; U must be a number >= 0 eV")
        if u < 0:
            raise WorkflowError(f"U schedule entry {p!r} is negative; U must be >= 0 eV")
        values.append(u)
    if len({format_u(u) for u in values}) != len(values):
        raise WorkflowError(
            f"U schedule {', '.join(format_u(u) for u in values)} repeats a value; "
            "each step's job is named by its U, so values must be distinct"
        )
    return tuple(values)


@dataclass
class RampPlan:
    """The jobs of a U ramp (no jobflow needed): names, input sets, records.

    Parameters
    ----------
    name
        Prefix of the job names (``{name}-ramp-u{U}``, ``{name}-static``), e.g. ``mg``.
    schedule
        U values (eV) on ``hubbard_element``, in run order; validated on construction.
    final_isif
        ISIF of the last relaxation (3: cell and ions, so lattice changes can be measured).
    intermediate_isif
        ISIF of the earlier relaxations (2: ions only).
    hubbard_element
        The element U is applied to (W; LDAUL 2).
    nupdown
        Fixed NUPDOWN for every job, or None (free).
    doped
        Use the input set's ``doped`` section (ISYM 0) — the cell carries polaron seeds.
    with_static
        Append the static job.
    relax_generator, static_generator
        Templates for the steps (None: :class:`ScanUSetGenerator` defaults).
    walltime, vasp_cmd, potcar_spec
        Passed to :meth:`VaspJobSpec.maker` (custodian wall time in s, VASP command,
        POTCAR.spec instead of POTCAR) when the flow is made.
    record_fields
        Extra facts recorded with every job (ion, configuration, ...).
    """

    name: str = "ramp"
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    final_isif: int = 3
    intermediate_isif: int = 2
    hubbard_element: str = "W"
    nupdown: int | None = None
    doped: bool = True
    with_static: bool = True
    relax_generator: ScanUSetGenerator | None = None
    static_generator: ScanUSetGenerator | None = None
    walltime: int | None = None
    vasp_cmd: str | None = None
    potcar_spec: bool = False
    record_fields: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.schedule = validate_schedule(self.schedule)
        for attr in ("final_isif", "intermediate_isif"):
            value = getattr(self, attr)
            if isinstance(value, bool) or value not in range(9):
                raise WorkflowError(f"{attr} must be a VASP ISIF value 0-8, got {value!r}")
        if self.nupdown is not None and (isinstance(self.nupdown, bool) or self.nupdown < 0):
            raise WorkflowError(
                f"nupdown must be a non-negative integer or None, got {self.nupdown!r}"
            )

    def step_name(self, u: float) -> str:
        """Name of the relaxation at ``u``."""
        return naming.ramp_step_name(self.name, u)

    @property
    def static_name(self) -> str:
        """Name of the final static."""
        return naming.static_name(self.name)

    def steps(self) -> list[VaspJobSpec]:
        """Return the planned jobs in run order.

        Returns
        -------
        list of VaspJobSpec
            One relaxation per schedule entry, then the static (if ``with_static``).
        """
        el = self.hubbard_element
        relax = self.relax_generator or ScanUSetGenerator(calc="relax")
        static = self.static_generator or ScanUSetGenerator(calc="static")
        schedule = list(self.schedule)
        base = dict(self.record_fields)
        base.update(u_schedule=schedule, hubbard_element=el, nupdown=self.nupdown)
        planned: list[VaspJobSpec] = []
        previous: str | None = None
        for i, u in enumerate(schedule):
            isif = self.final_isif if i == len(schedule) - 1 else self.intermediate_isif
            name = self.step_name(u)
            record = job_record(
                name,
                str(Role.RAMP_STEP),
                u=u,
                step=i + 1,
                n_steps=len(schedule),
                isif=isif,
                wavecar_from=previous,
                **base,
            )
            generator = dataclasses.replace(
                relax,
                calc="relax",
                hubbard_u={el: u},
                isif=isif,
                lwave=True,
                nupdown=self.nupdown,
                doped=self.doped,
            )
            planned.append(VaspJobSpec(name, "relax", generator, record, previous is not None))
            previous = name
        if self.with_static:
            u = schedule[-1]
            record = job_record(
                self.static_name,
                str(Role.RAMP_STATIC),
                u=u,
                step=len(schedule) + 1,
                n_steps=len(schedule),
                wavecar_from=previous,
                **base,
            )
            generator = dataclasses.replace(
                static, calc="static", hubbard_u={el: u}, nupdown=self.nupdown, doped=self.doped
            )
            planned.append(VaspJobSpec(self.static_name, "static", generator, record, True))
        return planned


@dataclass
class KPointConvergencePlan:
    """Settings of a k-point convergence loop and its statics (no jobflow needed).

    Parameters
    ----------
    name
        Prefix of the job names, e.g. ``ref-MgO``.
    static_generator
        Input-set template of the statics (None: the SCAN+U static defaults).
    static_maker
        Instead of ``static_generator``: any maker with a ``kpoint_mesh`` field (tests).
    start_length
        L (Å) of the first mesh.
    length_step
        Increment of L (Å) between meshes (skipped on until the mesh changes).
    tolerance
        |ΔE| per atom (eV/atom) between successive meshes that counts as converged.
    max_steps
        The most statics to run before failing.
    consecutive
        How many successive energy differences must all be below ``tolerance`` (our choice:
        2, so one accidental match of two meshes does not end the loop).
    molecule
        Γ only, one static; None reads ``structure.properties["molecule"]``.
    walltime, vasp_cmd, potcar_spec
        Passed to :meth:`VaspJobSpec.maker`.
    record_fields
        Extra facts recorded with every static.
    """

    name: str = "kconv"
    static_generator: ScanUSetGenerator | None = None
    static_maker: Maker | None = None
    start_length: float = 20.0
    length_step: float = 5.0
    tolerance: float = DEFAULT_TOLERANCE
    max_steps: int = 12
    consecutive: int = 2
    molecule: bool | None = None
    walltime: int | None = None
    vasp_cmd: str | None = None
    potcar_spec: bool = False
    record_fields: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for attr in ("start_length", "length_step", "tolerance"):
            value = getattr(self, attr)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise WorkflowError(f"{attr} must be a positive number, got {value!r}")
        if not (isinstance(self.max_steps, int) and self.max_steps >= 2):
            raise WorkflowError(f"max_steps must be an integer >= 2, got {self.max_steps!r}")
        if not (isinstance(self.consecutive, int) and 1 <= self.consecutive < self.max_steps):
            raise WorkflowError(
                f"consecutive must be an integer from 1 to max_steps - 1, got {self.consecutive!r}"
            )

    def is_molecule(self, structure: Structure) -> bool:
        """Whether the loop treats ``structure`` as a molecule (Γ only)."""
        return is_molecule(structure) if self.molecule is None else self.molecule

    def first_mesh(self, structure: Structure) -> tuple[int, int, int]:
        """Mesh of the first static."""
        if self.is_molecule(structure):
            return (1, 1, 1)
        return kpoint_mesh(structure, self.start_length)

    def static_spec(
        self, name: str, mesh: tuple[int, ...], record: dict[str, Any] | None = None
    ) -> VaspJobSpec:
        """The spec of the static at ``mesh`` (for dry runs and :meth:`static_job`)."""
        generator = self.static_generator or ScanUSetGenerator(calc="static")
        molecule = generator.molecule if self.molecule is None else self.molecule
        generator = dataclasses.replace(
            generator, calc="static", kpoint_mesh=tuple(mesh), molecule=molecule
        )
        if record is None:
            record = job_record(
                name, str(Role.KPOINT_STATIC), mesh=list(mesh), **self.record_fields
            )
        return VaspJobSpec(name, "static", generator, record)

    def static_name(self, mesh: tuple[int, ...]) -> str:
        """Name of the static at ``mesh``."""
        return naming.kpoint_static_name(self.name, mesh)
