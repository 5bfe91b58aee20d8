"""Candidates for a polaron ground-state search: exact symmetry orbits, pseudo-symmetry classes.

Two levels of reduction, both recorded:

1. **Exact symmetry.**  Configurations (which W carry the donated electrons) that a space-group
   operation of the *doped* cell maps onto each other are one orbit.  The operations come from
   pymatgen's ``SpacegroupAnalyzer``; only their action on the W sites is computed here
   (:func:`~polaronflow.structures.polarons.site_permutations`).  For the P2_1/n γ-WO3 cavity
   centre (a general position) the site symmetry is trivial and every orbit has one member;
   in a cubic ReO3-type host the cavity has m-3m site symmetry and pairs collapse into few
   orbits.
2. **Pseudo-symmetry (optional).**  Orbits whose sorted dopant–W and W–W distances (and, for
   several dopants, dopant–dopant distances) agree within a tolerance are one class.  pymatgen has
   no such grouping (it is a metric, not a group-theoretic equivalence), hence the code below.
   Grouping is complete-linkage: every two members of a class differ by at most the tolerance
   in every sorted distance, and members share their shell numbers.

Cations are enumerated in every cavity orbit (one representative cavity per orbit), protons over
the orbits of bridging O (first H on a representative O of each orbit, the others by the
placement rule), and each class comes in every requested spin state (NUPDOWN).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from pymatgen.core import Structure

from polaronflow.errors import InputError
from polaronflow.structures.doping import DopedStructure, insert_cation, insert_protons
from polaronflow.structures.polarons import (
    DEFAULT_SEED_MOMENT,
    DEFAULT_SEED_TOLERANCE,
    PolaronConfiguration,
    auto_polaron_seeds,
    canonical_combinations,
    enumerate_polaron_configurations,
    site_permutations,
)
from polaronflow.structures.sites import bridging_oxygens, cavity_sites, symmetry_operations

#: Identifier and version of the candidate JSON (``candidates.json``).
SCHEMA = "polaronflow.candidates/1"
#: Default pseudo-symmetry tolerance (Å) of ``polaronflow build --enumerate``.  The sorted
#: distances of γ-WO3 spread continuously (shell 1: 3.0–3.5 Å, shell 2: 5.9–6.6 Å), so the class
#: count falls smoothly with the tolerance; for Mg over shells 1 and 2 (496 pairs per cavity):
#: 0.05 Å → ~350 classes, 0.1 Å → ~210, 0.2 Å → ~100, 0.3 Å → ~60 (tests pin the exact numbers).
#: 0.3 Å is about the W off-centring and tilt distortion of γ-WO3 from the cubic parent.
DEFAULT_CLASS_TOLERANCE = 0.3


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeedSite(_Model):
    """One W that carries a polaron seed in a candidate."""

    index: int = Field(
        description="0-based site index of the W (pymatgen order, as in 'polaronflow sites')."
    )
    vasp_ion: int = Field(
        description="VASP ion number of the W: its 1-based position in the POSCAR (index + 1), "
        "as in OUTCAR's magnetization table; '--polarons ion:N' takes it."
    )
    label: str = Field(description="Readable label, 'W<index> (ion <vasp_ion>)'.")
    shell: int = Field(description="W-shell number around the nearest dopant (1 = nearest).")
    distance: float = Field(
        description="Distance of the W to the nearest dopant (nearest periodic image), Å."
    )
    moment: float = Field(
        description="Initial magnetic moment (MAGMOM) of the W, μB; the signs realise the "
        "candidate's NUPDOWN."
    )


class Candidate(_Model):
    """One class of configurations in one spin state: what a search would run once."""

    id: str = Field(
        description="Unique id: dopant, cavity or first O and placement, class, NUPDOWN."
    )
    class_id: int = Field(
        description="0-based class number within its group (cavity, or proton arrangements), "
        "in order of increasing sorted distances."
    )
    dopant: str = Field(description="Dopant element (Mg, Li, ..., H).")
    n_dopant: int = Field(description="Number of dopant atoms (1 for a cation, n for nH).")
    n_polarons: int = Field(description="Number of polaron seeds (electrons donated).")
    cavity_index: int | None = Field(
        description="Index of the A-site cavity of the cation (as in 'polaronflow sites'); "
        "None for protons."
    )
    cavity_orbit: int | None = Field(
        description="Symmetry orbit of that cavity in the host (0, 1); None for protons."
    )
    o_indices: list[int] = Field(
        default_factory=list, description="0-based O site indices carrying the protons."
    )
    o_orbits: list[int] = Field(
        default_factory=list, description="Host symmetry orbit of each protonated O."
    )
    proton_placement: str | None = Field(
        default=None, description="How the protons after the first were placed: far or near."
    )
    seeds: list[SeedSite] = Field(
        description="The representative configuration: its seed W, nearest first."
    )
    shells: list[int] = Field(description="Sorted W-shell numbers of the seeds.")
    dopant_w_distances: list[float] = Field(
        description="Sorted distances seed W – nearest dopant of the representative, Å."
    )
    w_w_distances: list[float] = Field(
        description="Sorted distances between the seed W of the representative, Å."
    )
    dopant_dopant_distances: list[float] = Field(
        default_factory=list, description="Sorted distances between dopant atoms, Å."
    )
    nupdown: int = Field(
        description="Spin state: NUPDOWN, the number of up minus down electrons (μB)."
    )
    count: int = Field(
        description="How many configurations the class stands for (sum of the exact "
        "symmetry multiplicities of its members)."
    )
    n_orbits: int = Field(description="Number of symmetry-distinct configurations in the class.")
    members: list[list[int]] = Field(
        description="0-based seed W indices of one configuration per exact orbit in the class, "
        "the representative first (the medoid: the member whose largest distance difference "
        "to the others is smallest)."
    )
    member_multiplicities: list[int] = Field(
        description="Exact symmetry multiplicity of each member (same order as members)."
    )
    member_o_indices: list[list[int]] = Field(
        default_factory=list,
        description="Protons only: the protonated O site indices (0-based) of each member, same "
        "order as members.",
    )
    spread: float = Field(
        description="Largest difference of any sorted distance between two members, Å "
        "(at most the tolerance)."
    )

    def polarons_spec(self) -> str:
        """The ``--polarons`` value that seeds this candidate, in VASP ion numbers."""
        return ",".join(f"ion:{s.vasp_ion}" for s in self.seeds)

    def build_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~polaronflow.structures.builder.build_doped` for it.

        The spin state is not among them: apply :attr:`seeds`' moments (or NUPDOWN) on top.
        """
        kwargs: dict[str, Any] = {"polarons": [s.index for s in self.seeds]}
        if self.cavity_index is not None:
            kwargs.update(ion=self.dopant, cavity=self.cavity_index)
        else:
            kwargs.update(ion=None, protons=self.n_dopant, o_indices=list(self.o_indices))
        return kwargs


class CandidateGroup(_Model):
    """The configurations of one dopant position (a cavity, or all proton arrangements)."""

    label: str = Field(description="'cavity <index>' or 'protons'.")
    cavity_index: int | None = Field(description="Cavity index, or None for protons.")
    cavity_orbit: int | None = Field(description="Cavity orbit, or None for protons.")
    cavity_orbit_size: int | None = Field(
        description="Number of cavities of the supercell in that orbit (all give the same "
        "candidates), or None."
    )
    n_configurations: int = Field(
        description="Configurations before any reduction (e.g. C(32, 2) = 496 pairs over "
        "shells 1 and 2)."
    )
    n_orbits: int = Field(description="Symmetry-distinct configurations (exact symmetry).")
    n_classes: int = Field(description="Classes after the pseudo-symmetry grouping.")
    site_symmetry_operations: int = Field(
        description="Cations: operations of the doped cell's space group, i.e. the site "
        "symmetry of the cavity centre (1 = none); protons: operations of the host's space "
        "group acting on the O sites (the arrangements of several H are reduced with them)."
    )


class CandidateSet(_Model):
    """Every candidate of one doped system, with the counts and tolerances that made them."""

    schema_id: str = Field(default=SCHEMA, description="Schema identifier and version.")
    host_formula: str = Field(description="Formula of the host supercell.")
    dopant: str = Field(description="Dopant element.")
    n_dopant: int = Field(description="Number of dopant atoms.")
    n_polarons: int = Field(description="Number of polaron seeds per configuration.")
    shells: list[int] = Field(
        description="W shells (around the dopant) the cation configurations are drawn from; "
        "protons: seeds by the deterministic rule, shells not enumerated."
    )
    tolerance: float | None = Field(
        description="Pseudo-symmetry tolerance, Å; None: exact symmetry only."
    )
    symprec: float = Field(description="Symmetry tolerance of spglib, Å.")
    seed_tolerance: float = Field(description="Tie tolerance of the seed rule (protons' seeds), Å.")
    nupdown: list[int] = Field(description="Spin states (NUPDOWN) each class is offered in.")
    groups: list[CandidateGroup] = Field(description="Per dopant position: the counts.")
    n_configurations: int = Field(description="Configurations over all groups.")
    n_classes: int = Field(description="Classes over all groups (before spin states).")
    candidates: list[Candidate] = Field(description="Classes times spin states.")


def nupdown_states(n_polarons: int, nupdown: Sequence[int] | str = "auto") -> list[int]:
    """The spin states of ``n_polarons`` unpaired electrons: ``"auto"`` gives all of them.

    Two polarons: NUPDOWN 0 (antiparallel) and 2 (parallel); one: 1; three: 1 and 3.
    """
    valid = list(range(n_polarons % 2, n_polarons + 1, 2))
    if isinstance(nupdown, str):
        if nupdown.strip().lower() != "auto":
            raise InputError(f"nupdown {nupdown!r} must be 'auto' or integers such as 0,2")
        return valid
    states = [int(k) for k in nupdown]
    bad = [k for k in states if k not in valid]
    if bad or not states or len(set(states)) != len(states):
        raise InputError(
            f"NUPDOWN {states} is not valid for {n_polarons} polarons: choose distinct values "
            f"among {valid}"
        )
    return states


def _spin_moments(n: int, nupdown: int, moment: float) -> list[float]:
    up = (n + nupdown) // 2
    return [moment if k < up else -moment for k in range(n)]


def _descriptor(structure: Structure, config: PolaronConfiguration, dopants: list[int]):
    w = list(config.w_indices)
    ww = sorted(structure.get_distance(a, b) for i, a in enumerate(w) for b in w[i + 1 :])
    dd = sorted(
        structure.get_distance(a, b) for i, a in enumerate(dopants) for b in dopants[i + 1 :]
    )
    key = tuple(sorted(config.shells))
    return key, np.array(sorted(config.distances) + ww + dd)


def group_by_distances(
    items: list[tuple[tuple, np.ndarray, Any]], tolerance: float | None
) -> list[list[int]]:
    """Complete-linkage grouping of descriptors: members agree within ``tolerance`` pairwise.

    Parameters
    ----------
    items
        (categorical key, distance vector in Å, payload) per item; only items with equal keys
        and vectors of equal length can share a group.
    tolerance
        Largest allowed difference of any vector entry between two members (Å); ``None``
        puts every item in its own group.

    Returns
    -------
    list[list[int]]
        Groups as lists of item positions, in order of increasing (key, vector); each group's
        first entry is its smallest.
    """
    order = sorted(range(len(items)), key=lambda i: (items[i][0], tuple(items[i][1])))
    if tolerance is None:
        return [[i] for i in order]
    groups: list[list[int]] = []
    for i in order:
        key, vec, _ = items[i]
        for group in groups:
            first = items[group[0]]
            if first[0] != key or len(first[1]) != len(vec):
                continue
            if all(np.max(np.abs(items[j][1] - vec)) <= tolerance for j in group):
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def _medoid_first(members: list[int], items) -> list[int]:
    """``members`` with the one closest to all others (smallest largest difference) first."""
    if len(members) < 3:
        return members
    vecs = np.array([items[m][1] for m in members])
    worst = np.abs(vecs[:, None, :] - vecs[None, :, :]).max(axis=(1, 2))
    best = int(np.argmin(worst))  # first minimum: the smallest-descriptor one on ties
    return [members[best]] + [m for k, m in enumerate(members) if k != best]


def _spread(vectors: list[np.ndarray]) -> float:
    arr = np.array(vectors)
    return float(np.max(arr.max(axis=0) - arr.min(axis=0))) if len(arr) > 1 else 0.0


def _seed_sites(config: PolaronConfiguration, moments: list[float]) -> list[SeedSite]:
    return [
        SeedSite(
            index=w,
            vasp_ion=w + 1,
            label=f"W{w} (ion {w + 1})",
            shell=sh,
            distance=round(d, 4),
            moment=m,
        )
        for w, sh, d, m in zip(
            config.w_indices, config.shells, config.distances, moments, strict=True
        )
    ]


def _select_cavities(host: Structure, cavities: str | Sequence[int], symprec: float):
    all_cavities = cavity_sites(host, symprec=symprec)
    if isinstance(cavities, str):
        choice = cavities.strip().lower()
        if choice == "all":
            seen: dict[int, Any] = {}
            for cav in all_cavities:
                seen.setdefault(cav.orbit, cav)
            return list(seen.values()), all_cavities
        if choice == "auto":
            return [all_cavities[0]], all_cavities
        try:
            cavities = [int(x) for x in choice.replace(",", " ").split()]
        except ValueError:
            raise InputError(
                f"cavities {cavities!r} must be 'all', 'auto' or cavity indices such as 0,32"
            ) from None
    picked = []
    for index in cavities:
        if not 0 <= int(index) < len(all_cavities):
            raise InputError(
                f"cavity index {index} is out of range (valid: 0..{len(all_cavities) - 1})"
            )
        picked.append(all_cavities[int(index)])
    if not picked:
        raise InputError("give at least one cavity (or 'all')")
    return picked, all_cavities


def candidate_set(
    host_supercell: Structure,
    ion: str | None = "Mg",
    protons: int | None = None,
    shells: Sequence[int] = (1, 2),
    tolerance: float | None = DEFAULT_CLASS_TOLERANCE,
    cavities: str | Sequence[int] = "all",
    nupdown: Sequence[int] | str = "auto",
    placements: Sequence[str] = ("far", "near"),
    symprec: float = 0.01,
    seed_moment: float = DEFAULT_SEED_MOMENT,
    seed_tolerance: float = DEFAULT_SEED_TOLERANCE,
) -> CandidateSet:
    """Enumerate the candidates of one doped system, with the counts of every reduction.

    Parameters
    ----------
    host_supercell
        The pristine host supercell (e.g. the 256-atom γ-WO3 cell, relaxed or not); indices of
        the candidates refer to it with the dopant(s) appended, as ``build_doped`` makes them.
    ion
        Intercalant cation (ignored when ``protons`` is given).
    protons
        Number of protons (as O–H) instead of a cation.
    shells
        W shells around the cation whose W the polarons are drawn from (cations only).
    tolerance
        Pseudo-symmetry tolerance (Å); ``None`` or 0 for exact symmetry only.
    cavities
        ``"all"`` (one cavity per symmetry orbit), ``"auto"`` (cavity 0) or cavity indices.
    nupdown
        Spin states; ``"auto"`` gives every one of the polaron count (0 and 2 for two).
    placements
        Proton placements offered after the first proton (``far``, ``near``).
    symprec
        spglib tolerance (Å) for orbits of cavities, O sites and configurations.
    seed_moment
        Magnitude of the seed moments (μB).
    seed_tolerance
        Tie tolerance of the seed rule used for the protons' polaron seeds (Å).

    Returns
    -------
    CandidateSet
        Counts per group and the candidates (classes times spin states).
    """
    if tolerance is not None and not (np.isfinite(tolerance) and tolerance >= 0):
        raise InputError(f"pseudo-symmetry tolerance {tolerance} must be a number >= 0 (Å)")
    if tolerance == 0:
        tolerance = None
    groups: list[CandidateGroup] = []
    candidates: list[Candidate] = []
    if protons is not None:
        doped_list, group = _proton_configurations(
            host_supercell, protons, placements, symprec, seed_tolerance
        )
        systems = [(group, doped_list)]
        dopant, n_dopant = "H", int(protons)
    else:
        if ion is None:
            raise InputError("give an intercalant ion (e.g. Mg) or a number of protons")
        chosen, all_cavities = _select_cavities(host_supercell, cavities, symprec)
        systems = []
        for cav in chosen:
            doped = insert_cation(host_supercell, ion, cav.index)
            configs = enumerate_polaron_configurations(doped, shells=tuple(shells), symprec=symprec)
            n_ops = len(symmetry_operations(doped.structure, symprec))
            group = {
                "label": f"cavity {cav.index}",
                "cavity_index": cav.index,
                "cavity_orbit": cav.orbit,
                "cavity_orbit_size": sum(1 for c in all_cavities if c.orbit == cav.orbit),
                "site_symmetry_operations": n_ops,
            }
            systems.append((group, [(doped, c, {}) for c in configs]))
        dopant, n_dopant = ion, 1
    n_polarons = 0
    states: list[int] = []
    for group, entries in systems:
        if not entries:
            continue
        n_polarons = len(entries[0][1].w_indices)
        states = nupdown_states(n_polarons, nupdown)
        items = []
        for doped, config, extra in entries:
            key, vec = _descriptor(doped.structure, config, doped.dopant_indices)
            items.append((key, vec, (doped, config, extra)))
        classes = group_by_distances(items, tolerance)
        group_model = CandidateGroup(
            n_configurations=sum(e[1].multiplicity for e in entries),
            n_orbits=len(entries),
            n_classes=len(classes),
            **{k: group.get(k) for k in ("label", "cavity_index", "cavity_orbit")},
            cavity_orbit_size=group.get("cavity_orbit_size"),
            site_symmetry_operations=group.get("site_symmetry_operations", 1),
        )
        groups.append(group_model)
        for class_id, members in enumerate(classes):
            members = _medoid_first(members, items)
            doped, rep, extra = items[members[0]][2]
            vec = items[members[0]][1]
            n_d = len(doped.dopant_indices)
            n_w = len(rep.w_indices)
            n_ww = n_w * (n_w - 1) // 2
            where = (
                f"cav{group['cavity_index']}"
                if group.get("cavity_index") is not None
                else f"o{extra['o_indices'][0]}"
                + (f"-{extra['placement']}" if extra.get("placement") else "")
            )
            for state in states:
                moments = _spin_moments(n_w, state, seed_moment)
                candidates.append(
                    Candidate(
                        id=f"{n_dopant if n_d > 1 else ''}{dopant}-{where}-c{class_id:03d}"
                        f"-nupdown{state}",
                        class_id=class_id,
                        dopant=dopant,
                        n_dopant=n_d,
                        n_polarons=n_w,
                        cavity_index=group.get("cavity_index"),
                        cavity_orbit=group.get("cavity_orbit"),
                        o_indices=list(extra.get("o_indices", [])),
                        o_orbits=list(extra.get("o_orbits", [])),
                        proton_placement=extra.get("placement"),
                        seeds=_seed_sites(rep, moments),
                        shells=sorted(rep.shells),
                        dopant_w_distances=[round(x, 4) for x in vec[:n_w]],
                        w_w_distances=[round(x, 4) for x in vec[n_w : n_w + n_ww]],
                        dopant_dopant_distances=[round(x, 4) for x in vec[n_w + n_ww :]],
                        nupdown=state,
                        count=sum(items[m][2][1].multiplicity for m in members),
                        n_orbits=len(members),
                        members=[list(items[m][2][1].w_indices) for m in members],
                        member_multiplicities=[items[m][2][1].multiplicity for m in members],
                        member_o_indices=[
                            list(items[m][2][2]["o_indices"])
                            for m in members
                            if "o_indices" in items[m][2][2]
                        ],
                        spread=round(_spread([items[m][1] for m in members]), 4),
                    )
                )
    return CandidateSet(
        host_formula=host_supercell.composition.formula.replace(" ", ""),
        dopant=dopant,
        n_dopant=n_dopant,
        n_polarons=n_polarons,
        shells=[int(s) for s in shells],
        tolerance=tolerance,
        symprec=symprec,
        seed_tolerance=seed_tolerance,
        nupdown=states,
        groups=groups,
        n_configurations=sum(g.n_configurations for g in groups),
        n_classes=sum(g.n_classes for g in groups),
        candidates=candidates,
    )


def enumerate_candidates(
    host_supercell: Structure,
    ion: str | None = "Mg",
    protons: int | None = None,
    shells: Sequence[int] = (1, 2),
    tolerance: float | None = DEFAULT_CLASS_TOLERANCE,
    cavities: str | Sequence[int] = "all",
    nupdown: Sequence[int] | str = "auto",
    **kwargs: Any,
) -> list[Candidate]:
    """The candidate list of one doped system, for a search campaign to run.

    Same parameters as :func:`candidate_set` (which also returns the counts).  Each
    :class:`Candidate` says where the dopant goes (``cavity_index`` or ``o_indices``), which W
    to seed (``seeds``: 0-based index and VASP ion number, shell, distance, signed moment) and
    the spin state (``nupdown``); :meth:`Candidate.build_kwargs` gives the arguments of
    ``build_doped``.
    """
    return candidate_set(
        host_supercell,
        ion=ion,
        protons=protons,
        shells=shells,
        tolerance=tolerance,
        cavities=cavities,
        nupdown=nupdown,
        **kwargs,
    ).candidates


def o_site_orbits(host: Structure, o_indices: Sequence[int], symprec: float = 0.01):
    """Orbit label of each given O site under the host's space group (0, 1, ... by lowest O)."""
    perms = site_permutations(host, o_indices, symprec)
    idx = sorted(int(i) for i in o_indices)
    pos = {o: a for a, o in enumerate(idx)}
    canonical = {o: int(perms[:, pos[o]].min()) for o in idx}
    reps = sorted(set(canonical.values()))
    return {o: reps.index(canonical[o]) for o in idx}, perms


def _proton_configurations(
    host: Structure,
    protons: int,
    placements: Sequence[str],
    symprec: float,
    seed_tolerance: float,
):
    if isinstance(protons, bool) or int(protons) < 1:
        raise InputError(f"number of protons {protons!r} must be a positive integer")
    for p in placements:
        if p not in ("far", "near"):
            raise InputError(f"placement {p!r} is not valid: use far and/or near")
    bridging = bridging_oxygens(host)
    o_idx = [b.o_index for b in bridging]
    orbit_of, perms = o_site_orbits(host, o_idx, symprec)
    first_per_orbit: dict[int, int] = {}
    for o in sorted(o_idx):
        first_per_orbit.setdefault(orbit_of[o], o)
    seen: dict[tuple[int, ...], int] = {}
    entries: list[tuple[DopedStructure, PolaronConfiguration, dict]] = []
    for orbit in sorted(first_per_orbit):
        for placement in placements if protons > 1 else placements[:1]:
            doped = insert_protons(
                host,
                protons,
                placement,
                first_o=first_per_orbit[orbit],  # type: ignore[arg-type]
            )
            o_set = np.array([sorted(doped.o_indices)])
            key = tuple(int(x) for x in canonical_combinations(o_set, o_idx, perms)[0])
            if key in seen:
                continue
            images = {
                tuple(sorted(int(x) for x in row))
                for row in perms[:, [sorted(o_idx).index(o) for o in o_set[0]]]
            }
            seen[key] = len(images)
            config = auto_polaron_seeds(doped, seed_tolerance)
            config = PolaronConfiguration(
                w_indices=config.w_indices,
                shells=config.shells,
                distances=config.distances,
                multiplicity=len(images),
            )
            extra = {
                "o_indices": list(doped.o_indices),
                "o_orbits": [orbit_of[o] for o in doped.o_indices],
                "placement": placement if protons > 1 else None,
            }
            entries.append((doped, config, extra))
    group = {"label": "protons", "site_symmetry_operations": len(perms)}
    return entries, group


__all__ = [
    "DEFAULT_CLASS_TOLERANCE",
    "SCHEMA",
    "Candidate",
    "CandidateGroup",
    "CandidateSet",
    "SeedSite",
    "candidate_set",
    "enumerate_candidates",
    "group_by_distances",
    "nupdown_states",
    "o_site_orbits",
]
