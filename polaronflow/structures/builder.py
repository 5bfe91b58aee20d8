"""One call from "which dopant, where, which polarons" to seeded structures and a manifest.

This is what ``polaronflow build`` runs and what the campaign uses to make its doped start
structures: host (embedded γ-WO3 or a file) → supercell → dopant → polaron seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pymatgen.core import Structure
from pymatgen.io.vasp import Poscar

from polaronflow.errors import InputError, PolaronSeedError
from polaronflow.fileio import staged_directory, write_json_atomic
from polaronflow.structures.candidates import CandidateSet, candidate_set
from polaronflow.structures.doping import DopedStructure, insert_cation, insert_protons
from polaronflow.structures.host import gamma_wo3, load_host, make_supercell
from polaronflow.structures.polarons import (
    DEFAULT_DISTANCE_TOLERANCE,
    DEFAULT_SEED_MOMENT,
    DEFAULT_SEED_TOLERANCE,
    SEED_RULE,
    PolaronConfiguration,
    auto_polaron_seeds,
    enumerate_polaron_configurations,
    resolve_polaron_spec,
    seed_polarons,
)
from polaronflow.structures.sites import cavity_sites


@dataclass
class BuildResult:
    """The seeded doped supercell, the pristine supercell, and what was done."""

    structure: Structure
    host: Structure
    doped: DopedStructure
    seeds: PolaronConfiguration
    configurations: list[PolaronConfiguration] = field(default_factory=list)
    seed_moment: float = DEFAULT_SEED_MOMENT
    stretch: float = 0.0
    #: tie tolerance of the seed rule (Å), see :func:`~polaronflow.structures.polarons.pick_seed`.
    seed_tolerance: float = DEFAULT_SEED_TOLERANCE
    #: tie and match tolerance of ``d:`` seeds (Å).
    distance_tolerance: float = DEFAULT_DISTANCE_TOLERANCE
    #: how the seeds were asked for: "auto", "none" or the tokens given (37, ion:38, d:3.24).
    seed_request: list[str] = field(default_factory=list)
    #: the candidate enumeration (``enumerate_shells`` given), written as ``candidates.json``.
    candidates: CandidateSet | None = None

    def manifest(self) -> dict:
        """JSON-ready record: dopant, seeds (shell, distance), x, electrons, provenance."""
        host_props = self.host.properties
        cavity = None
        if self.doped.cavity_index is not None:
            cav = self.doped.cavity
            if cav is None or cav.index != self.doped.cavity_index:
                cav = cavity_sites(self.host)[self.doped.cavity_index]
            cavity = {
                "index": cav.index,
                "orbit": cav.orbit,
                "frac_coords": [round(x, 6) for x in cav.frac_coords],
            }
        return {
            "polaronflow_manifest": 1,
            "doping": self.doped.manifest(),
            "cavity": cavity,
            "polaron_seeds": [
                {
                    "w_index": w,
                    "vasp_ion": w + 1,
                    "shell": sh,
                    "distance_to_dopant": round(d, 4),
                    "seed_moment": self.seed_moment,
                }
                for w, sh, d in zip(
                    self.seeds.w_indices, self.seeds.shells, self.seeds.distances, strict=True
                )
            ],
            "seed_rule": {
                "request": list(self.seed_request),
                "rule": SEED_RULE,
                "tie_tolerance": self.seed_tolerance,
                "distance_tolerance": self.distance_tolerance,
                "margins": [round(m, 4) for m in self.seeds.margins],
                "indices": "w_index is the 0-based site index; vasp_ion = w_index + 1 is the "
                "1-based POSCAR ion number",
            },
            "bond_stretch": self.stretch,
            "magmom_nonzero": {
                str(i): m for i, m in enumerate(self.structure.site_properties["magmom"]) if m
            },
            "supercell_matrix": host_props.get("supercell_matrix"),
            "host_formula": self.host.composition.formula.replace(" ", ""),
            "formula": self.structure.composition.formula.replace(" ", ""),
            "n_sites": len(self.structure),
            "provenance": host_props.get("provenance"),
            "configurations": [c.as_dict() for c in self.configurations],
            "candidates": (
                None
                if self.candidates is None
                else {
                    "file": "candidates.json",
                    "n_configurations": self.candidates.n_configurations,
                    "n_classes": self.candidates.n_classes,
                    "n_candidates": len(self.candidates.candidates),
                    "tolerance": self.candidates.tolerance,
                }
            ),
        }

    def write(self, out: str | Path, force: bool = True) -> Path:
        """Write ``POSCAR`` (doped, seeded), ``POSCAR.host`` and ``manifest.json`` into ``out``."""
        out = Path(out)
        with staged_directory(out, overwrite=force) as stage:
            Poscar(self.structure, comment=f"polaronflow {self.doped.label}").write_file(
                stage / "POSCAR"
            )
            Poscar(self.host, comment="polaronflow host supercell").write_file(
                stage / "POSCAR.host"
            )
            write_json_atomic(stage / "manifest.json", self.manifest())
            if self.candidates is not None:
                data = self.candidates.model_dump(mode="json")
                write_json_atomic(stage / "candidates.json", data)
        return out


def build_doped(
    ion: str | None = "Mg",
    protons: int | None = None,
    cavity: int | str = "auto",
    placement: Literal["far", "near"] = "far",
    o_indices: Sequence[int] | None = None,
    polarons: str | Sequence[int] = "auto",
    supercell: Sequence[int] | Sequence[Sequence[int]] = (2, 2, 2),
    host: str | Path | Structure | None = None,
    seed_moment: float = DEFAULT_SEED_MOMENT,
    stretch: float = 0.0,
    allow_count_mismatch: bool = False,
    enumerate_shells: Sequence[int] | None = None,
    *,
    seed_tolerance: float = DEFAULT_SEED_TOLERANCE,
    distance_tolerance: float = DEFAULT_DISTANCE_TOLERANCE,
    enumerate_tolerance: float | None = None,
    enumerate_cavities: str | Sequence[int] = "all",
    enumerate_nupdown: Sequence[int] | str = "auto",
) -> BuildResult:
    """Build a doped, polaron-seeded supercell.

    Parameters
    ----------
    ion
        Intercalant cation (see :data:`~polaronflow.structures.doping.ION_ELECTRONS`); ignored
        when ``protons`` is given.
    protons
        Number of protons to add as O–H instead of a cation.
    cavity, placement, o_indices
        Where the dopant goes (see :func:`insert_cation`, :func:`insert_protons`).
    polarons
        ``"auto"`` (:func:`auto_polaron_seeds`), ``"none"``, or explicit seeds: 0-based W site
        indices (``"37,0"`` or a sequence of ints), VASP ion numbers (``"ion:38,ion:1"``) or
        distances to the dopant in Å (``"d:3.24,d:6.24"``), see :func:`resolve_polaron_spec`.
    supercell
        Scaling of the host (three integers or a 3x3 matrix).
    host
        ``None`` for the embedded γ-WO3, a file path, or a Structure.
    seed_moment, stretch
        Passed to :func:`seed_polarons`.
    allow_count_mismatch
        Accept a number of seeds different from the electrons donated.
    enumerate_shells
        If given, also enumerate the symmetry-distinct configurations over these W shells
        (``configurations``, for the chosen cavity) and the search candidates
        (``candidates``: :func:`~polaronflow.structures.candidates.candidate_set`).
    seed_tolerance
        Tie tolerance (Å) of the seed rule for ``"auto"`` seeds: among W within it of the
        nearest, the lowest index wins, so the same W is chosen in the unrelaxed (build, dry
        run) and the relaxed (run time) supercell.  Recorded in the manifest with each seed's
        margin (how far distances may move before the choice changes).
    distance_tolerance
        Tie and match tolerance (Å) of ``d:`` seeds.
    enumerate_tolerance
        Pseudo-symmetry tolerance (Å) of the candidates; None or 0: exact symmetry only.
    enumerate_cavities, enumerate_nupdown
        Cavities (``"all"``: one per orbit) and spin states (``"auto"``: all) of the candidates.
    """
    for name, value in (("seed", seed_tolerance), ("distance", distance_tolerance)):
        if not (isinstance(value, int | float) and value >= 0):
            raise PolaronSeedError(f"{name} tolerance {value!r} must be a number >= 0 (Å)")
    if host is None:
        base = gamma_wo3()
    elif isinstance(host, Structure):
        base = host
    else:
        base = load_host(host)
    supercell_structure = make_supercell(base, supercell)
    if protons is not None:
        doped = insert_protons(
            supercell_structure, protons, placement, list(o_indices) if o_indices else None
        )
    else:
        if ion is None:
            raise InputError("give an intercalant ion (e.g. Mg) or a number of protons")
        doped = insert_cation(supercell_structure, ion, cavity)
    choice = polarons.strip().lower() if isinstance(polarons, str) else None
    if choice == "auto":
        seeds = auto_polaron_seeds(doped, seed_tolerance)
        request = ["auto"]
    elif choice == "none":
        seeds = PolaronConfiguration(w_indices=(), shells=(), distances=())
        request = ["none"]
    else:
        indices, request = resolve_polaron_spec(doped, polarons, distance_tolerance)
        seeds = _explicit(doped, indices)
    if len(seeds.w_indices) != doped.electrons_donated and not allow_count_mismatch:
        raise PolaronSeedError(
            f"{len(seeds.w_indices)} polaron seeds given but {doped.ion} donates "
            f"{doped.electrons_donated} electrons; give {doped.electrons_donated} W indices or "
            "allow the mismatch explicitly (--allow-count-mismatch)"
        )
    if seeds.w_indices:
        structure = seed_polarons(doped.structure, seeds.w_indices, seed_moment, stretch)
    else:
        structure = doped.structure.copy()
        structure.add_site_property("magmom", [0.0] * len(structure))
        structure.add_site_property("polaron_seed", [False] * len(structure))
    doped.structure = structure
    configurations = (
        enumerate_polaron_configurations(doped, shells=tuple(enumerate_shells))
        if enumerate_shells
        else []
    )
    candidates = (
        candidate_set(
            supercell_structure,
            ion=doped.ion if protons is None else None,
            protons=protons,
            shells=tuple(enumerate_shells),
            tolerance=enumerate_tolerance,
            cavities=enumerate_cavities,
            nupdown=enumerate_nupdown,
            seed_moment=seed_moment,
            seed_tolerance=seed_tolerance,
        )
        if enumerate_shells
        else None
    )
    return BuildResult(
        structure=structure,
        host=supercell_structure,
        doped=doped,
        seeds=seeds,
        configurations=configurations,
        seed_moment=seed_moment,
        stretch=stretch,
        seed_tolerance=seed_tolerance,
        distance_tolerance=distance_tolerance,
        seed_request=request,
        candidates=candidates,
    )


def _explicit(doped: DopedStructure, indices: list[int]) -> PolaronConfiguration:
    from polaronflow.structures.polarons import _configuration, _nearest_shell_table

    table = _nearest_shell_table(doped)
    s = doped.structure
    bad = [i for i in indices if not (0 <= i < len(s)) or s[i].specie.symbol != "W"]
    if bad:
        w_sites = [i for i, site in enumerate(s) if site.specie.symbol == "W"]
        raise PolaronSeedError(
            f"polaron seed indices {bad} (0-based) are not W sites of the doped cell (W sites: "
            f"{min(w_sites)}..{max(w_sites)}, VASP ions {min(w_sites) + 1}..{max(w_sites) + 1})"
        )
    if len(set(indices)) != len(indices):
        raise PolaronSeedError(f"polaron seeds {indices} (0-based) repeat a W")
    for w in indices:
        if w not in table:  # beyond the shells searched: compute its distance directly
            d = min(s.get_distance(w, i) for i in doped.dopant_indices)
            table[w] = (0, d)
    return _configuration(indices, table)
