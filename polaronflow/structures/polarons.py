"""Seed small polarons on W sites and enumerate where the donated electrons could go.

Seeding writes the ``magmom`` site property: the seed moment on each chosen W and exactly 0 on
every other site (atomate2 would otherwise start every W at 5 μB, which delocalises the
electrons instead of localising them).  Optionally the six W–O bonds of a seed W are stretched
a little, since a W5+ polaron is larger than W6+ (bond-distortion seeding).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from pymatgen.core import Structure

from polaronflow.errors import PolaronSeedError
from polaronflow.structures.doping import DopedStructure
from polaronflow.structures.sites import WShell, symmetry_operations, w_shells

#: Initial moment on a seed W (μB): one unpaired 5d electron.
DEFAULT_SEED_MOMENT = 1.0
#: Largest W–O distance treated as a bond of the seed's octahedron (Å).
_W_O_BOND_MAX = 2.6
#: Cap on the number of candidate configurations enumerated before symmetry reduction.
MAX_CONFIGURATIONS = 200_000


@dataclass(frozen=True)
class PolaronConfiguration:
    """A choice of W sites for the donated electrons, relative to the dopant(s)."""

    #: structure indices of the seed W sites.
    w_indices: tuple[int, ...]
    #: W-shell number of each seed around its nearest dopant (1 = nearest shell).
    shells: tuple[int, ...]
    #: distance of each seed to its nearest dopant, Å.
    distances: tuple[float, ...]
    #: how many configurations of the enumeration this one stands for (symmetry multiplicity).
    multiplicity: int = 1

    def as_dict(self) -> dict:
        return {
            "w_indices": list(self.w_indices),
            "shells": list(self.shells),
            "distances": [round(d, 4) for d in self.distances],
            "multiplicity": self.multiplicity,
        }


def _w_indices(structure: Structure) -> set[int]:
    return {i for i, site in enumerate(structure) if site.specie.symbol == "W"}


def seed_polarons(
    structure: Structure,
    w_indices: Sequence[int],
    moment: float = DEFAULT_SEED_MOMENT,
    stretch: float = 0.0,
) -> Structure:
    """A copy of ``structure`` with polaron seeds on the given W sites.

    Parameters
    ----------
    structure
        Host or doped structure.
    w_indices
        Site indices of the W atoms that should carry a polaron.
    moment
        Seed moment (μB) on each chosen W; every other site gets exactly 0.
    stretch
        Fractional elongation of each seed W's six W–O bonds (0.03 = +3 %); the O atoms move
        along the bond.  0 leaves the geometry untouched.

    Returns
    -------
    Structure
        With site properties ``magmom`` (float) and ``polaron_seed`` (bool).

    Raises
    ------
    PolaronSeedError
        An index that is out of range, not a W, or repeated; a non-finite moment; a stretch
        outside [0, 0.2].
    """
    seeds = [int(i) for i in w_indices]
    w_sites = _w_indices(structure)
    bad = [i for i in seeds if i not in w_sites]
    if bad:
        raise PolaronSeedError(
            f"polaron seed indices {bad} are not W sites (W sites are "
            f"{min(w_sites)}..{max(w_sites)} in this {len(structure)}-site structure)"
            if w_sites
            else "the structure has no W to seed polarons on"
        )
    if len(set(seeds)) != len(seeds):
        raise PolaronSeedError(f"polaron seed indices {seeds} repeat a W")
    if not np.isfinite(moment) or moment == 0:
        raise PolaronSeedError(f"seed moment {moment} must be a finite, non-zero number (μB)")
    if not 0.0 <= stretch <= 0.2:
        raise PolaronSeedError(f"bond stretch {stretch} must be a fraction between 0 and 0.2")
    seeded = structure.copy()
    if stretch:
        for w in seeds:
            for nb in seeded.get_neighbors(seeded[w], _W_O_BOND_MAX):
                if nb.specie.symbol != "O":
                    continue
                bond = nb.coords - seeded[w].coords
                new_cart = seeded[nb.index].coords + stretch * bond
                seeded.replace(
                    nb.index,
                    nb.species,
                    new_cart,
                    coords_are_cartesian=True,
                    properties=seeded[nb.index].properties,
                )
    seeded.add_site_property("magmom", [moment if i in seeds else 0.0 for i in range(len(seeded))])
    seeded.add_site_property("polaron_seed", [i in seeds for i in range(len(seeded))])
    return seeded


def dopant_shells(doped: DopedStructure, max_distance: float = 9.0) -> list[list[WShell]]:
    """The W shells around each dopant site (one list per dopant, in dopant order)."""
    s = doped.structure
    return [w_shells(s, s[i].coords, max_distance=max_distance) for i in doped.dopant_indices]


def _nearest_shell_table(doped: DopedStructure) -> dict[int, tuple[int, float]]:
    """W index -> (shell number, distance) around its nearest dopant."""
    table: dict[int, tuple[int, float]] = {}
    for shells in dopant_shells(doped):
        for shell in shells:
            for w, d in zip(shell.w_indices, shell.distances, strict=True):
                if w not in table or d < table[w][1]:
                    table[w] = (shell.number, d)
    return table


def _configuration(indices: Iterable[int], table, multiplicity: int = 1) -> PolaronConfiguration:
    idx = tuple(sorted(indices, key=lambda w: (table[w][1], w)))
    return PolaronConfiguration(
        w_indices=idx,
        shells=tuple(table[w][0] for w in idx),
        distances=tuple(float(table[w][1]) for w in idx),
        multiplicity=multiplicity,
    )


def _w_permutations(structure: Structure, symprec: float) -> list[dict[int, int]]:
    """Each symmetry operation of ``structure`` as a permutation of its W sites."""
    w_idx = sorted(_w_indices(structure))
    frac = np.array([structure[i].frac_coords for i in w_idx])
    tol = 0.05 / min(structure.lattice.abc) + symprec
    perms = []
    for rot, trans in symmetry_operations(structure, symprec):
        image = np.mod(frac @ np.asarray(rot).T + trans, 1.0)
        mapping = {}
        for a, p in enumerate(image):
            diff = frac - p
            diff -= np.round(diff)
            match = np.nonzero(np.all(np.abs(diff) < tol, axis=1))[0]
            if len(match) != 1:
                break
            mapping[w_idx[a]] = w_idx[int(match[0])]
        else:
            perms.append(mapping)
    return perms or [{w: w for w in w_idx}]


def enumerate_polaron_configurations(
    doped: DopedStructure,
    shells: Sequence[int] = (1, 2),
    n_polarons: int | None = None,
    symprec: float = 0.01,
) -> list[PolaronConfiguration]:
    """Every symmetry-distinct way to put the donated electrons on W sites of given shells.

    Parameters
    ----------
    doped
        The doped structure (its dopants define the shells).
    shells
        Shell numbers around the nearest dopant that candidates are drawn from (the paper's
        polarons sit in shells 1 and 2).
    n_polarons
        How many W to choose; default the electrons donated.
    symprec
        Symmetry tolerance (Å) of the doped structure's space group, used to merge equivalent
        configurations.

    Returns
    -------
    list[PolaronConfiguration]
        Sorted by shells, then distances; ``multiplicity`` counts the merged equivalents.
    """
    n = doped.electrons_donated if n_polarons is None else int(n_polarons)
    if n < 1:
        raise PolaronSeedError(f"number of polarons {n} must be at least 1")
    if not shells or any(int(s) < 1 for s in shells):
        raise PolaronSeedError(
            f"shells {list(shells)} must be positive shell numbers (1 = nearest)"
        )
    table = _nearest_shell_table(doped)
    candidates = sorted(w for w, (shell, _) in table.items() if shell in set(shells))
    if len(candidates) < n:
        raise PolaronSeedError(
            f"only {len(candidates)} W in shells {list(shells)} for {n} polarons: add shells"
        )
    from math import comb

    if comb(len(candidates), n) > MAX_CONFIGURATIONS:
        raise PolaronSeedError(
            f"{comb(len(candidates), n)} configurations of {n} polarons over {len(candidates)} W "
            f"exceed the limit of {MAX_CONFIGURATIONS}: use fewer shells"
        )
    perms = _w_permutations(doped.structure, symprec)
    counts: dict[tuple[int, ...], int] = {}
    for combo in combinations(candidates, n):
        canonical = min(tuple(sorted(p.get(w, w) for w in combo)) for p in perms)
        counts[canonical] = counts.get(canonical, 0) + 1
    configs = [_configuration(c, table, m) for c, m in counts.items()]
    return sorted(configs, key=lambda c: (sorted(c.shells), c.distances, c.w_indices))


def auto_polaron_seeds(doped: DopedStructure) -> PolaronConfiguration:
    """A sensible default placement of the donated electrons.

    One dopant donating several electrons (Mg, Ca, Zn: 2; Al: 3): the first ⌈n/2⌉ go on the
    nearest W of shell 1, the rest on the nearest W of shell 2, skipping W that are framework
    neighbours of a seed already chosen (polarons repel).  For Mg this is the paper's
    arrangement: one polaron in the 1st, one in the 2nd W shell.  Several one-electron dopants
    (H, Li, ...): each takes its nearest free W.
    """
    table = _nearest_shell_table(doped)
    s = doped.structure
    chosen: list[int] = []

    def far_from_chosen(w: int) -> bool:
        return all(s.get_distance(w, c) > 4.6 for c in chosen)

    n = doped.electrons_donated
    if len(doped.dopant_indices) == 1:
        plan = [1] * ((n + 1) // 2) + [2] * (n // 2)
        for shell in plan:
            options = sorted(
                (d, w) for w, (sh, d) in table.items() if sh == shell and w not in chosen
            )
            pick = next((w for _, w in options if far_from_chosen(w)), None)
            if pick is None and options:
                pick = options[0][1]
            if pick is None:
                raise PolaronSeedError(f"no free W in shell {shell} around the dopant")
            chosen.append(pick)
    else:
        per_dopant = n // len(doped.dopant_indices)
        for d in doped.dopant_indices:
            dists = sorted((s.get_distance(d, w), w) for w in table if w not in chosen)
            picks = [w for _, w in dists if far_from_chosen(w)][:per_dopant]
            if len(picks) < per_dopant:
                picks = [w for _, w in dists][:per_dopant]
            chosen.extend(picks)
    return _configuration(chosen, table)
