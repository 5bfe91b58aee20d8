"""Scenarios: the physics the mock-VASP emulator writes, as a pydantic model loaded from YAML.

A scenario never claims to be a result. It says, for each kind of system the emulator may be
asked to "compute", which numbers to write: energies, band edges, the polaron level, the
moments of the W that carry a polaron (the *sites* come from the WAVECAR a run continues or,
starting fresh, from the MAGMOM seeds, so a wrong seed shows up in the outputs), the critical
U below which polarons delocalise, the energy landscape (configuration, spin, functional,
ENCUT, geometry), the lattice response to doping, how moments, band edges and energies move
along a U ramp, the k-mesh dependence of reference energies, and which faults to inject.

Systems are recognised from the POSCAR composition:

* ``host``  -- a W–O framework without other elements (WO3 cell or supercell);
* ``dopants[X]`` -- the host plus atoms of element X (Mg in a cavity, H on O, ...);
* ``references[F]`` -- anything else, keyed by reduced formula (``MgO``, ``Mg``, ``O2``).

Built-in scenarios live in ``polaronflow/emulator/scenarios/*.yaml``; :func:`load_scenario`
accepts their names or a path to a user's YAML file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from polaronflow.errors import InputError

FaultKind = Literal[
    "zbrent",
    "edddav",
    "grad_not_orth",
    "zheev",
    "brmix",
    "too_few_bands",
    "kill",
    "unconverged",
    "truncated",
    "delocalise",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KMeshDependence(_Strict):
    """Error of a total energy versus k-point density: ``amplitude * exp(-R_k / length)``.

    ``R_k = min_i(n_i * |a_i|)`` is the real-space length of the k-mesh (Å); a k-point
    convergence loop therefore converges after a few denser meshes.
    """

    amplitude: float = Field(0.3, description="Energy error per atom at R_k = 0 (eV/atom).")
    length: float = Field(3.0, gt=0, description="Decay length of the error (Å).")


class LatticeChange(_Strict):
    """Relative change of the relaxed cell with respect to the relaxed host, in percent."""

    a: float = Field(0.0, description="Change of a (%).")
    b: float = Field(0.0, description="Change of b (%).")
    c: float = Field(0.0, description="Change of c (%).")
    beta: float = Field(0.0, description="Change of the monoclinic angle beta (%).")


class HostPhysics(_Strict):
    """The pristine W–O framework (e.g. γ-WO3)."""

    energy_per_formula_unit: float = Field(
        description="Total energy per WO3 unit at U = u_reference (eV/f.u.)."
    )
    energy_u_slope: float = Field(0.0, description="dE/dU per W atom (eV per eV of U on W d).")
    u_reference: float = Field(5.0, description="U on W d at which energies are given (eV).")
    cell_32: tuple[float, float, float, float] | None = Field(
        None,
        description="Relaxed 32-atom cell a, b, c (Å) and beta (degrees) written for ISIF=3; "
        "supercells are scaled by their multiplicity. None keeps the input cell.",
    )
    pseudo_cubic: float = Field(
        3.75, description="W–W spacing used to count the cell multiplicity along a, b, c (Å)."
    )
    vbm: float = Field(description="Valence-band maximum (eV).")
    cbm: float = Field(description="Conduction-band minimum at u_reference (eV).")
    cbm_u_slope: float = Field(
        0.0,
        description="d(CBM)/dU (eV per eV of U on W d): U pushes the empty W d band up, so the "
        "gap and the CBM move with U.",
    )
    cb_spin_splitting: float = Field(
        0.3,
        ge=0,
        description="Exchange splitting of the conduction band when dopant electrons are "
        "delocalised in a spin-polarised run: the minority band lies this much higher (eV).",
    )
    seed_threshold: float = Field(
        0.25,
        ge=0,
        description="|MAGMOM| on a W (μB) from which a seed localises a polaron when a run "
        "starts without a WAVECAR.",
    )
    valence_width: float = Field(7.0, description="Width of the O 2p valence band (eV).")
    conduction_width: float = Field(6.0, description="Width of the W 5d conduction band (eV).")


class DopantPhysics(_Strict):
    """An element added to the host: its electrons, their polarons, its energy and strain."""

    electrons: int = Field(description="Electrons one dopant atom gives to the host.")
    energy_per_dopant: float = Field(
        description="Energy added to the host energy per dopant atom at U = u_reference (eV)."
    )
    energy_u_slope: float = Field(0.0, description="dE/dU per dopant atom (eV/eV).")
    moments_by_shell: list[float] = Field(
        description="Moment of a polaron W by its W shell around the nearest dopant "
        "(shell 1 first; the last value is used beyond) at U = u_reference (μB)."
    )
    shell_edges: list[float] = Field(
        default_factory=lambda: [4.6, 7.2],
        description="Upper distance of each W shell from the dopant (Å).",
    )
    moment_u_slope: float = Field(
        0.0, description="d(moment)/dU of the polaron W (μB per eV of U)."
    )
    tail_moment: float = Field(
        0.04, description="Moment on each of the 4 in-plane (100) W neighbours (μB)."
    )
    ingap_depth: float = Field(
        description="Depth of the occupied polaron level below the CBM at u_reference (eV)."
    )
    ingap_shell_step: float = Field(
        0.05, description="Extra depth per shell beyond the first (eV)."
    )
    ingap_u_slope: float = Field(0.0, description="d(depth)/dU (eV per eV of U).")
    critical_u: float | None = Field(
        None,
        validation_alias=AliasChoices("critical_u", "delocalise_below_u"),
        description="Critical U on W d (eV): below it a polaron is unstable and its electron "
        "delocalises into the conduction band (metallic occupations, a small moment on every "
        "W), whether the run starts from seeds or continues a WAVECAR. None: always localised. "
        "(``delocalise_below_u`` is accepted as the old name.)",
    )
    localisation_slope: float = Field(
        0.0,
        ge=0,
        description="Localisation energy of a polaron versus the delocalised electron: "
        "-localisation_slope * (U - critical_u) (eV per eV of U); zero without critical_u.",
    )
    binding_energy: float = Field(
        0.0,
        description="Dopant-polaron attraction: each polaron adds "
        "-binding_energy * exp(-d / binding_length), d its distance to the nearest dopant (eV).",
    )
    binding_length: float = Field(3.0, gt=0, description="Decay length of the binding (Å).")
    pair_repulsion: float = Field(
        0.0,
        description="Polaron-polaron repulsion: each pair adds "
        "pair_repulsion * exp(-r / pair_length), r their distance (eV).",
    )
    pair_length: float = Field(2.5, gt=0, description="Decay length of the repulsion (Å).")
    pair_exchange: float = Field(
        0.0,
        description="Spin coupling of a polaron pair: adds pair_exchange * s_i * s_j * "
        "exp(-r / pair_length) (s = +-1); > 0 favours antiparallel spins (eV).",
    )
    lattice_change: LatticeChange = Field(
        default_factory=LatticeChange, description="Relaxed cell versus the relaxed host."
    )
    bond_stretch: float = Field(
        0.04, description="Outward shift of the six O around a polaron W on relaxation (Å)."
    )


class ReferencePhysics(_Strict):
    """A reference phase (MgO, hcp Mg, the O2 molecule, ...)."""

    energy_per_formula_unit: float = Field(
        description="Converged total energy per reduced formula unit (eV/f.u.)."
    )
    kind: Literal["insulator", "metal", "molecule"] = Field(
        "insulator", description="Band model used for eigenvalues and occupations."
    )
    vbm: float = Field(0.0, description="Highest occupied level (eV).")
    cbm: float = Field(4.0, description="Lowest empty level (eV); ignored for metals.")
    moment_per_formula_unit: float = Field(
        0.0, description="Spin moment per formula unit when NUPDOWN is not set (μB)."
    )
    moment_energy: float = Field(
        0.0,
        ge=0,
        description="Energy per μB by which the cell's moment differs from its ground moment "
        "(moment_per_formula_unit times formula units), when ISPIN = 1 or NUPDOWN forces "
        "another moment: e.g. the O2 singlet above the triplet (eV/μB).",
    )
    kmesh: KMeshDependence | None = Field(
        None, description="k-mesh dependence of the energy; None: none."
    )


class RelaxationModel(_Strict):
    """How a relaxation (IBRION >= 0, NSW > 0) unfolds."""

    ionic_steps: int = Field(4, ge=1, description="Ionic steps written (capped by NSW).")
    energy_per_atom: float = Field(
        0.002, ge=0, description="Energy of the first ionic step above the final (eV/atom)."
    )


class EncutDependence(_Strict):
    """Basis-set error of total energies: ``amplitude * exp(-ENCUT / decay)`` per atom."""

    amplitude: float = Field(4.0, description="Energy error per atom at ENCUT = 0 (eV/atom).")
    decay: float = Field(110.0, gt=0, description="Decay energy of the error (eV).")
    default_encut: float = Field(
        400.0, gt=0, description="ENCUT assumed when the INCAR has none (VASP: max ENMAX) (eV)."
    )


class EnergyModel(_Strict):
    """Terms of the total energy that do not depend on the system kind.

    The scenario's energies (host, dopants, references) are for ``functional`` at a
    converged ENCUT, for a relaxed geometry. Another functional shifts every atom by
    ``functional_shift[name]``; a finite ENCUT adds the basis-set error; a geometry away from
    the emulator's relaxed one adds ``0.5 * harmonic_k * sum |u_i|^2`` (u_i the displacement of
    atom i from its relaxed position, Å). The relaxed positions are the framework's positions
    made symmetric (spglib, ``symprec``; dopants left out of the symmetry search and left in
    place), plus the O stretch around each polaron W.
    """

    functional: str = Field("SCAN", description="Functional the scenario energies belong to.")
    functional_shift: dict[str, float] = Field(
        default_factory=lambda: {"SCAN": 0.0, "R2SCAN": 0.173, "PBE": 1.287, "PBESOL": 0.941},
        description="Energy per atom added for each functional (upper-case METAGGA name, or "
        "PBE for GGA = PE, PBESOL for GGA = PS) (eV/atom); an unknown one is an error.",
    )
    encut: EncutDependence = Field(
        default_factory=EncutDependence, description="Basis-set (ENCUT) dependence."
    )
    harmonic_k: float = Field(
        7.3, ge=0, description="Force constant of the geometry term (eV/Å^2 per atom)."
    )
    symprec: float = Field(
        0.1,
        gt=0,
        description="Symmetry tolerance (Å) of the framework (the cell without dopants) that "
        "decides the relaxed positions: displacements below it that break a symmetry (a "
        "rattle) relax away.",
    )


class FaultSpec(_Strict):
    """A failure the emulator injects, the way VASP would fail.

    ``zbrent``, ``edddav``, ``grad_not_orth``, ``zheev``, ``brmix``, ``too_few_bands``: VASP's
    message in stdout (and OUTCAR) and the run stopped there: every file cut at that SCF
    step, CONTCAR from the last completed ionic step (empty if none), no WAVECAR/CHGCAR.
    ``kill``: the same at a random point of the SCF or ionic loop, without a message (a
    walltime or node failure). ``unconverged``: NELM is reached in every ionic step.
    ``truncated``: every step done, the job killed while writing the final eigenvalues/DOS:
    vasprun.xml cut (no ``</modeling>``), OUTCAR without its timing block.
    ``delocalise``: polarons do not form below ``below_u``.

    Fixable faults (zbrent, edddav, unconverged) are injected only while INCAR and POSCAR
    are the ones the fault first saw: once custodian's correction changes them, the rerun
    succeeds. ``persistent: true`` keeps failing regardless.
    """

    kind: FaultKind = Field(description="Which failure to inject.")
    system: str | None = Field(
        None,
        description="Only for this system: 'host', a dopant element, or a reference formula. "
        "None: every system.",
    )
    u: float | None = Field(None, description="Only when the INCAR's U on W equals this (eV).")
    below_u: float | None = Field(None, description="delocalise: threshold U (eV).")
    ionic_step: int | None = Field(
        None, ge=1, description="Fatal faults: the ionic step (1-based) to stop in."
    )
    scf_step: int | None = Field(
        None, ge=0, description="Fatal faults: SCF steps completed before stopping."
    )
    persistent: bool = Field(False, description="Keep failing after the INCAR changes.")


class Scenario(_Strict):
    """The physics a mock-VASP run writes (see module docstring)."""

    name: str = Field(description="Scenario name.")
    description: str = Field("", description="What the scenario is for.")
    synthetic_note: str = Field(
        "Synthetic numbers written by the polaronflow mock-VASP emulator; not VASP results.",
        description="Shown wherever the numbers are reported.",
    )
    host: HostPhysics = Field(description="The pristine framework.")
    dopants: dict[str, DopantPhysics] = Field(
        default_factory=dict, description="Dopant element -> its physics."
    )
    references: dict[str, ReferencePhysics] = Field(
        default_factory=dict, description="Reduced formula -> reference-phase physics."
    )
    relaxation: RelaxationModel = Field(
        default_factory=RelaxationModel, description="Shape of relaxations."
    )
    energy: EnergyModel = Field(
        default_factory=EnergyModel,
        description="Functional, ENCUT and geometry terms of the energy.",
    )
    faults: list[FaultSpec] = Field(default_factory=list, description="Faults to inject.")


def builtin_scenarios() -> list[str]:
    """Names of the scenarios shipped in ``polaronflow/emulator/scenarios``."""
    folder = resources.files("polaronflow.emulator") / "scenarios"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_scenario(name_or_path: str | Path | Scenario | None = None) -> Scenario:
    """Load a scenario by built-in name (default ``paper_like``) or from a YAML file.

    Parameters
    ----------
    name_or_path
        A built-in name (see :func:`builtin_scenarios`), a path to a YAML file, an existing
        :class:`Scenario` (returned as is), or None for ``paper_like``.

    Returns
    -------
    Scenario
        The validated scenario.

    Raises
    ------
    InputError
        Unknown name, unreadable file or invalid content.
    """
    if isinstance(name_or_path, Scenario):
        return name_or_path
    name_or_path = name_or_path or "paper_like"
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise InputError(f"scenario file {str(path)!r} does not exist")
        text = path.read_text()
    else:
        known = builtin_scenarios()
        if str(name_or_path) not in known:
            raise InputError(
                f"unknown scenario {str(name_or_path)!r}; built-in scenarios: {', '.join(known)}"
                " (or give a path to a YAML file)"
            )
        text = resources.files("polaronflow.emulator") / "scenarios" / f"{name_or_path}.yaml"
        text = text.read_text()
    try:
        data = yaml.safe_load(text)
        return Scenario.model_validate(data)
    except (yaml.YAMLError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"scenario {str(name_or_path)!r} is not valid: {first} ...") from exc
