"""Result models of the analysis: pydantic, JSON round-trip, units in every description.

Every analysis function returns one of these; :func:`polaronflow.analysis.report.analyze_runs`
nests them into an :class:`AnalysisReport`.  Energies are in eV, lengths in Å, moments in μB,
angles in degrees, percentages in %.  Fields that a run cannot supply are ``None``, never 0.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: 1 eV per particle in kJ/mol (CODATA: e·N_A / 1000).
EV_TO_KJ_PER_MOL = 96.48533212


class _Model(BaseModel):
    # defer_build: validators are built on first use, which keeps `polaronflow analyze` start-up
    # fast (building every model at import costs ~45 ms). Empty lists and dicts are plain
    # defaults (`default=[]`), which pydantic copies for each instance: a `default_factory`
    # of the builtin `list` makes pydantic inspect its signature from text when the model is
    # built (~8 ms for the report's models).
    model_config = ConfigDict(extra="forbid", defer_build=True)


# --------------------------------------------------------------------------- polarons
class PolaronSite(_Model):
    """One localised moment on a host-cation site (a small polaron)."""

    index: int = Field(
        description="0-based site index in the run's final structure (Python numbering; "
        "the VASP/OUTCAR/VESTA ion number is `ion`)"
    )
    ion: int = Field(
        default=0,
        description="1-based ion number as VASP, the OUTCAR magnetization table and VESTA "
        "number it (= index + 1)",
    )
    element: str = Field(description="element of the site (the host cation, W by default)")
    moment: float = Field(description="site magnetic moment from the OUTCAR table, μB")
    frac_coords: list[float] = Field(description="fractional coordinates of the site")
    dopant_index: int | None = Field(
        default=None, description="0-based index of the nearest dopant site (None: no dopant)"
    )
    dopant_ion: int | None = Field(
        default=None, description="1-based VASP ion number of that dopant (= dopant_index + 1)"
    )
    dopant_element: str | None = Field(default=None, description="element of that dopant")
    distance_to_dopant: float | None = Field(
        default=None, description="minimum-image distance to the nearest dopant, Å"
    )
    shell: int | None = Field(
        default=None,
        description="1-based shell of host-cation sites around that dopant (1 = nearest)",
    )
    neighbour_indices: list[int] = Field(
        default=[],
        description="0-based indices of the nearest-neighbour host-cation sites used for tails",
    )
    neighbour_ions: list[int] = Field(
        default=[], description="the same sites as 1-based VASP ion numbers"
    )
    neighbour_moments: list[float] = Field(
        default=[], description="moments on those neighbours, μB"
    )
    neighbour_distances: list[float] = Field(
        default=[], description="distances from the centre to those neighbours, Å"
    )
    tail_fraction: float | None = Field(
        default=None,
        description=(
            "share of the polaron's moment on its neighbours: sum of neighbour moments (signed "
            "like the centre) / (centre + that sum), dimensionless"
        ),
    )
    plane: str | None = Field(
        default=None,
        description="Miller plane of the cell the polaron spreads in, e.g. '(100)'; None when "
        "the tails are too small or isotropic to define one",
    )
    plane_hkl: list[int] | None = Field(default=None, description="that plane as [h, k, l]")
    plane_deviation: float | None = Field(
        default=None,
        description="angle between the fitted plane normal and the (hkl) normal, degrees",
    )
    plane_contrast: float | None = Field(
        default=None,
        description="(mean |m| of the 4 in-plane neighbours - mean |m| of the others) / mean "
        "|m| of the 4 in-plane ones, dimensionless; near 0 means no preferred plane",
    )


class PolaronAnalysis(_Model):
    """Polarons of one run: sites, their geometry and the electron count check."""

    path: str = Field(description="run folder")
    synthetic: bool = Field(
        default=False,
        description="True when the run was written by the "
        "mock-VASP emulator (POLARONFLOW-SYNTHETIC)",
    )
    host_element: str = Field(description="host-cation element searched for polarons")
    threshold: float = Field(description="|moment| above which a host-cation site is a polaron, μB")
    dopant_indices: list[int] = Field(default=[], description="0-based indices of the dopant sites")
    dopant_ions: list[int] = Field(
        default=[], description="1-based VASP ion numbers of the dopant sites"
    )
    dopant_elements: list[str] = Field(default=[], description="their elements")
    electrons_donated: float | None = Field(
        default=None,
        description="electrons expected to localise, e: given explicitly, or the dopants' "
        "nominal donation plus any electrons added through NELECT (None: unknown)",
    )
    electrons_source: str | None = Field(
        default=None, description="how electrons_donated was obtained, in words"
    )
    total_moment: float | None = Field(
        default=None, description="total moment of the cell (from the run), μB"
    )
    sum_site_moments: float = Field(description="sum of the site moments of the OUTCAR table, μB")
    polaron_count: int = Field(description="number of host-cation sites with |m| >= threshold")
    polarons: list[PolaronSite] = Field(
        default=[], description="the polaron sites, largest |m| first"
    )
    largest_other_moment: float | None = Field(
        default=None, description="largest |m| among host-cation sites below threshold, μB"
    )
    largest_below_moment: float | None = Field(
        default=None,
        description="signed moment of that site (the host-cation site with the largest |m| "
        "below the threshold), μB",
    )
    largest_below_ion: int | None = Field(
        default=None, description="1-based VASP ion number of that site"
    )
    nn_cutoff: float | None = Field(
        default=None, description="host-cation nearest-neighbour cut-off used for tails, Å"
    )
    flags: list[str] = Field(
        default=[],
        description="'delocalised', 'missing', 'extra' (see docs/analysis.md)",
    )
    notes: list[str] = Field(default=[], description="human-readable remarks")


# ------------------------------------------------------------------------- electronic
class SpinEdges(_Model):
    """Band edges of one spin channel, from occupations (occupied means occupation > 0.5)."""

    spin: int = Field(description="spin index: 0 = up, 1 = down")
    occupied_top: float = Field(description="highest occupied eigenvalue, eV")
    unoccupied_bottom: float = Field(description="lowest unoccupied eigenvalue, eV")
    host_vbm: float = Field(
        description="top of the fully occupied host valence manifold (below any in-gap states), eV"
    )
    gap: float = Field(description="unoccupied_bottom - host_vbm, eV")
    n_in_gap: int = Field(description="number of occupied in-gap bands in this spin channel")


class InGapState(_Model):
    """One occupied band inside the host gap."""

    spin: int = Field(description="spin index: 0 = up, 1 = down")
    band: int = Field(description="0-based band index")
    energy: float = Field(description="k-weighted mean eigenvalue of the band, eV")
    energy_min: float = Field(description="lowest eigenvalue of the band over k, eV")
    energy_max: float = Field(description="highest eigenvalue of the band over k, eV")
    occupation: float = Field(description="k-weighted mean occupation (0..1)")
    above_host_vbm: float = Field(description="energy - host VBM (of either spin), eV")
    below_cbm: float = Field(description="CBM - energy, eV")


class LevelDepth(_Model):
    """Depth of the occupied in-gap (polaronic) level below the conduction-band minimum."""

    method: str = Field(
        description="'occupations' (eigenvalues) or 'dos-peak' (total/projected DOS)"
    )
    level: float = Field(description="energy of the level, eV")
    cbm: float = Field(description="conduction-band minimum used by this method, eV")
    depth: float = Field(description="cbm - level, eV")
    detail: str = Field(default="", description="how the numbers were obtained")
    character: dict[str, float] | None = Field(
        default=None,
        description="share of the site-projected DOS at the level per element (sums to 1, "
        "dimensionless); only when the projected DOS was read",
    )


class ElectronicAnalysis(_Model):
    """Band edges, gaps by several methods, occupied in-gap states and the level depth."""

    path: str = Field(description="run folder")
    synthetic: bool = Field(default=False, description="True for emulator output")
    ispin: int = Field(description="ISPIN of the run")
    nupdown: float | None = Field(default=None, description="NUPDOWN if fixed (>= 0), else None")
    efermi: float | None = Field(default=None, description="E-fermi printed by VASP, eV")
    spins: list[SpinEdges] = Field(default=[], description="edges per spin channel")
    vbm: float | None = Field(
        description="highest occupied eigenvalue of any spin (may be in-gap), eV; None: metal"
    )
    host_vbm: float | None = Field(description="host valence-band maximum over spins, eV")
    cbm: float | None = Field(description="lowest unoccupied eigenvalue of any spin, eV")
    gap_occupations: float | None = Field(
        description="max(cbm - vbm, 0) from occupations, eV; None for a metal"
    )
    host_gap: float | None = Field(description="cbm - host_vbm, eV; None for a metal")
    gap_efermi: float | None = Field(
        default=None,
        description="gap with states split at E-fermi instead of by occupation, eV",
    )
    gap_dos: float | None = Field(
        default=None,
        description="gap of the total DOS around E-fermi (DOS > tolerance), eV",
    )
    efermi_consistent: bool | None = Field(
        default=None,
        description="False when E-fermi lies below the highest occupied or above the lowest "
        "unoccupied state (E-fermi-based integrals are then wrong)",
    )
    in_gap_states: list[InGapState] = Field(
        default=[], description="occupied bands inside the host gap"
    )
    level_occupations: LevelDepth | None = Field(
        default=None, description="level depth from eigenvalues and occupations"
    )
    level_dos: LevelDepth | None = Field(
        default=None, description="level depth from the DOS peak vs the DOS conduction onset"
    )
    metal: bool = Field(
        default=False,
        description="fractionally occupied states at E-fermi (bands cross it): no gap and no "
        "in-gap level are reported",
    )
    warnings: list[str] = Field(default=[], description="disagreements and caveats")


# ---------------------------------------------------------------------------- thermo
class ReactionTerm(_Model):
    """One species of a reaction and the energy it contributes."""

    formula: str = Field(description="formula as written in the reaction")
    coefficient: float = Field(description="stoichiometric coefficient (> 0)")
    side: str = Field(description="'reactant' or 'product'")
    run: str | None = Field(default=None, description="run folder the energy comes from")
    formula_units: float = Field(description="formula units in the run's cell")
    energy_per_fu: float = Field(description="run energy per formula unit (no corrections), eV")
    correction_per_fu: float = Field(
        default=0.0, description="chemical-potential correction per formula unit (gas terms), eV"
    )


class ReactionEnergy(_Model):
    """ΔE of a balanced reaction from run energies, optionally with the O2 chemical potential."""

    reaction: str = Field(description="the reaction, e.g. 'Mg + 1/2 O2 -> MgO'")
    terms: list[ReactionTerm] = Field(description="every species with its energy")
    delta_e_dft: float = Field(description="ΔE from total energies only, eV per reaction")
    delta_e: float = Field(description="ΔE including the gas chemical-potential terms, eV")
    delta_e_kj_mol: float = Field(description="delta_e in kJ/mol (96.485 kJ/mol per eV)")
    temperature: float | None = Field(default=None, description="T of the O2 term, K")
    p_o2: float | None = Field(default=None, description="O2 partial pressure, atm")
    o2_pressure_term: float | None = Field(
        default=None, description="kB·T·ln(pO2/P0) per O2 molecule, eV (P0 = 1 atm)"
    )
    o2_temperature_term: float | None = Field(
        default=None,
        description="tabulated 2·Δμ_O(T, P0) per O2 molecule, eV (only when asked for)",
    )
    temperature_term_source: str | None = Field(
        default=None, description="citation of the tabulated temperature term"
    )
    overridden: list[str] = Field(
        default=[],
        description="consistency checks that failed but were overridden (result not trustworthy)",
    )


# ------------------------------------------------------------------------- structure
class LatticeParameters(_Model):
    """Cell lengths, angles and volume."""

    a: float = Field(description="a, Å")
    b: float = Field(description="b, Å")
    c: float = Field(description="c, Å")
    alpha: float = Field(description="α, degrees")
    beta: float = Field(description="β, degrees")
    gamma: float = Field(description="γ, degrees")
    volume: float = Field(description="cell volume, Å^3")


class LatticeComparison(_Model):
    """A cell against a reference cell, both scaled to the same multiple of the reference."""

    label: str = Field(description="what is compared, e.g. 'doped vs pristine'")
    cell: LatticeParameters = Field(description="the cell, divided by multiple")
    reference: LatticeParameters = Field(description="the reference cell")
    multiple: list[int] = Field(description="cell multiple along a, b, c used to scale the cell")
    percent: dict[str, float] = Field(
        description="100·(cell - reference)/reference for a, b, c, alpha, beta, gamma, volume, %"
    )
    max_abs_length_percent: float = Field(description="largest |Δ| of a, b, c, %")


# ------------------------------------------------------------------------ comparison
class DopantComparison(_Model):
    """Two dopants side by side (the paper compares Mg with H2x)."""

    label_a: str = Field(description="first case, e.g. 'Mg'")
    label_b: str = Field(description="second case, e.g. 'H2x'")
    depth_a: dict[str, float] = Field(description="level depth below CBM per method, case a, eV")
    depth_b: dict[str, float] = Field(description="the same for case b, eV")
    run_a: str | None = Field(default=None, description="run folder of case a")
    run_b: str | None = Field(default=None, description="run folder of case b")
    central_moment_a: float | None = Field(description="largest polaron |m|, case a, μB")
    central_moment_b: float | None = Field(description="largest polaron |m|, case b, μB")
    central_moment_ratio_percent: float | None = Field(
        description="100·(b - a)/a of the central moments, % (how much larger b's is than a's)"
    )
    central_moment_deficit_percent: float | None = Field(
        default=None,
        description="100·(1 - a/b) of the central moments, %: how much smaller a's moment is "
        "than b's (the paper's '≈15 %' for a = Mg, b = H2x)",
    )
    mean_moment_a: float | None = Field(description="mean polaron |m|, case a, μB")
    mean_moment_b: float | None = Field(description="mean polaron |m|, case b, μB")
    depth_difference: dict[str, float] = Field(description="depth b - depth a per method, eV")


# ---------------------------------------------------------------------------- report
class RampStep(_Model):
    """One run of a U ramp."""

    path: str = Field(description="run folder")
    u: float = Field(description="U on the host cation, eV")
    energy: float | None = Field(description="final energy, eV")
    largest_moments: list[float] = Field(description="largest host-cation |m|, descending, μB")
    converged: bool = Field(description="the run converged")
    level_depth: float | None = Field(
        default=None, description="occupied in-gap level below the CBM at this U, eV"
    )
    level_method: str | None = Field(default=None, description="how level_depth was obtained")
    moments: list[float] = Field(default=[], description="signed moments of the polaron sites, μB")
    polaron_ions: list[int] = Field(
        default=[], description="1-based VASP ion numbers of the polaron sites"
    )


class RampTrace(_Model):
    """A chain of runs of one system that differ only in U on the host cation."""

    system: str = Field(description="formula of the system")
    element: str = Field(description="element carrying U")
    steps: list[RampStep] = Field(description="the runs in ramp order")


class SpeciesBlock(_Model):
    """One POTCAR species block of a run (VASP's per-type INCAR lists follow these)."""

    element: str = Field(description="element of the block")
    sites: int = Field(description="number of sites in the block")
    u: float | None = Field(
        default=None, description="effective Hubbard U (U - J) on the block, eV; None: no U"
    )
    ldaul: int | None = Field(default=None, description="LDAUL of the block (-1: no U)")
    potcar: str | None = Field(default=None, description="POTCAR title of the block")
    zval: float | None = Field(default=None, description="valence electrons of the POTCAR, e")


class RunReport(_Model):
    """What one run folder holds and what the analysis found in it."""

    path: str = Field(description="run folder")
    synthetic: bool = Field(description="True for emulator output (POLARONFLOW-SYNTHETIC)")
    formula: str = Field(description="formula of the final structure, e.g. 'MgW64O192'")
    kind: str = Field(description="'relaxation' or 'static'")
    role: str | None = Field(
        default=None,
        description="campaign role from the folder's job name (polaronflow.naming), e.g. "
        "'ramp-static'; None when the folder is not named after a campaign job",
    )
    doped: bool = Field(description="the cell holds dopant sites")
    functional: str | None = Field(default=None, description="functional label")
    u_values: dict[str, float] = Field(
        default={},
        description="Hubbard U per element (Dudarev U-J), eV, from the species blocks (the "
        "largest when an element's blocks differ; see species_blocks)",
    )
    species_blocks: list[SpeciesBlock] = Field(
        default=[],
        description="the POTCAR species blocks in POSCAR order, each with its U, LDAUL and POTCAR",
    )
    ispin: int = Field(description="ISPIN")
    converged: bool = Field(description="electronically and ionically converged, file complete")
    energy: float | None = Field(default=None, description="final free energy, eV")
    energy_per_atom: float | None = Field(default=None, description="final energy per atom, eV")
    lattice: LatticeParameters | None = Field(default=None, description="final cell")
    polarons: PolaronAnalysis | None = Field(default=None, description="polaron analysis")
    electronic: ElectronicAnalysis | None = Field(default=None, description="band edges, levels")
    problems: list[str] = Field(default=[], description="why the run is not usable as-is")
    unavailable: dict[str, str] = Field(
        default={},
        description="quantity ('electronic', 'polarons', 'eigenvalues', ...) -> why it is not "
        "available, e.g. 'not available (no vasprun.xml)'",
    )
    partial: bool = Field(default=False, description="some analysis was skipped (see problems)")


class ConfigurationRank(_Model):
    """One static of a dopant among several (configurations, spin states, a search)."""

    run: str = Field(description="run folder")
    energy: float = Field(description="final free energy, eV")
    delta_e: float = Field(description="energy above the lowest of the group, eV")
    ground_state: bool = Field(description="True for the lowest-energy run of the group")
    nupdown: int | None = Field(default=None, description="NUPDOWN from the job name, if fixed")
    total_moment: float | None = Field(default=None, description="total moment of the cell, μB")
    polaron_ions: list[int] = Field(
        default=[], description="polaron sites as VASP ion numbers (1-based)"
    )
    shells: list[int | None] = Field(
        default=[], description="W shell of each polaron around the dopant"
    )
    moments: list[float] = Field(default=[], description="polaron moments, μB")


class ConfigurationRanking(_Model):
    """The statics of one dopant ranked by energy (the same composition, the same settings)."""

    label: str = Field(description="dopant label of the job names (e.g. 'mg', 'h2')")
    runs: list[ConfigurationRank] = Field(description="lowest energy first")


class AnalysisReport(_Model):
    """Everything ``polaronflow analyze`` found in the folders it was given."""

    synthetic: bool = Field(description="True when any run is emulator output: NOT real VASP data")
    site_numbering: str = Field(
        default="fields named *_ion/*_ions are 1-based VASP ion numbers (as in the OUTCAR and "
        "VESTA); fields named *index/*indices are 0-based Python site indices",
        description="which numbering the site fields use",
    )
    partial: bool = Field(default=False, description="some run or analysis failed and was skipped")
    runs: list[RunReport] = Field(default=[], description="one entry per run folder")
    lattice_changes: list[LatticeComparison] = Field(
        default=[], description="doped vs pristine cells found among the runs"
    )
    reactions: list[ReactionEnergy] = Field(
        default=[], description="reaction energies the runs allow"
    )
    ramps: list[RampTrace] = Field(default=[], description="U ramps found")
    configurations: list[ConfigurationRanking] = Field(
        default=[],
        description="per dopant with several final statics (polaron configurations, spin "
        "states, a ground-state search): ΔE to the lowest, polaron sites and spin state",
    )
    comparisons: list[DopantComparison] = Field(
        default=[], description="dopant comparisons (e.g. Mg vs H2x)"
    )
    errors: list[str] = Field(
        default=[], description="errors skipped because partial results were asked for"
    )
