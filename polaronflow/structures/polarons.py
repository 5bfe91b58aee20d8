"""Seed small polarons on W sites and enumerate where the donated electrons could go.

Seeding writes the ``magmom`` site property: the seed moment on each chosen W and exactly 0 on
every other site (atomate2 would otherwise start every W at 5 μB, which delocalises the
electrons instead of localising them).  Optionally the six W–O bonds of a seed W are stretched
a little, since a W5+ polaron is larger than W6+ (bond-distortion seeding).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import combinations

import numpy as np
from pymatgen.core import Structure

from polaronflow.errors import PolaronSeedError
from polaronflow.structures.doping import DopedStructure
from polaronflow.structures.sites import Cavity, WShell, symmetry_operations, w_shells

#: Initial moment on a seed W (μB): one unpaired 5d electron.
DEFAULT_SEED_MOMENT = 1.0
#: Largest W–O distance treated as a bond of the seed's octahedron (Å).
_W_O_BOND_MAX = 2.6
#: Cap on the number of candidate configurations enumerated before symmetry reduction.
MAX_CONFIGURATIONS = 200_000
#: Tie tolerance (Å) of the seed rule for ``auto`` seeds (:func:`pick_seed`): W whose distances
#: to the dopant differ by less than this are treated as equally near and the lowest index wins.
#: In γ-WO3 four shell-2 W lie within 0.07 Å of each other and which is nearest changes when the
#: cell relaxes.  0.25 Å is chosen from the rule's margins (:func:`seed_margin`) around the two
#: cavity orbits of γ-WO3: the smallest margin is 0.12 Å at 0.25 Å, against 0.03 Å at 0.1 Å and
#: 0.07 Å at 0.2 Å, so a relaxation must move distances by > 0.1 Å to change a default seed.
DEFAULT_SEED_TOLERANCE = 0.25
#: Tie (and match) tolerance (Å) for ``d:X`` seeds: smaller than the ``auto`` one, since the user
#: asks for a distance; "the W nearest X" is only as stable as this is (``ion:N`` pins one W).
DEFAULT_DISTANCE_TOLERANCE = 0.05
#: The seed rule in words (recorded in the build manifest next to the tolerance).
SEED_RULE = (
    "among the eligible W (for 'auto': the W of the wanted shell around the dopant that are not "
    "framework neighbours of a seed already chosen; for 'd:X': every W not yet chosen within "
    "the distance tolerance of X, measured by |d(dopant-W) - X|), keep those whose distance (or "
    "deviation) is within the tie tolerance of the smallest one, and take the lowest site index "
    "among them; site indices do not change in a relaxation, so the choice changes only when a "
    "distance moves by more than the seed's margin"
)


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
    #: per seed, the seed rule's margin (Å, :func:`seed_margin`); empty unless chosen by a rule.
    margins: tuple[float, ...] = ()

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


def site_permutations(
    structure: Structure, indices: Sequence[int], symprec: float = 0.01
) -> np.ndarray:
    """Each space-group operation of ``structure`` as a permutation of the given sites.

    The operations come from pymatgen's ``SpacegroupAnalyzer`` (spglib); this function only
    applies them to the sites and matches images to sites, which pymatgen offers per site
    (``get_symmetrically_equivalent``-style) but not as an index permutation for many sites.

    Parameters
    ----------
    structure
        The structure whose symmetry is used (e.g. a doped cell: its group is the dopant's site
        symmetry combined with the host's translations that keep the dopant).
    indices
        Site indices to permute (e.g. every W).
    symprec
        Symmetry tolerance (Å).

    Returns
    -------
    numpy.ndarray
        Shape (n_operations, len(indices)): row ``k`` maps ``indices[a]`` to ``row[a]`` (a site
        index).  Operations that do not map the sites onto themselves are dropped; the identity
        is always present.
    """
    idx = np.asarray(sorted(int(i) for i in indices), dtype=int)
    frac = np.array([structure[int(i)].frac_coords for i in idx]).reshape(-1, 3)
    tol = 0.05 / min(structure.lattice.abc) + symprec
    rows = [idx.copy()]
    for rot, trans in symmetry_operations(structure, symprec):
        image = np.mod(frac @ np.asarray(rot).T + trans, 1.0)
        diff = frac[None, :, :] - image[:, None, :]
        diff -= np.round(diff)
        close = np.all(np.abs(diff) < tol, axis=2)  # (image a, site b)
        if not np.all(close.sum(axis=1) == 1):
            continue
        row = idx[np.argmax(close, axis=1)]
        if len(set(row.tolist())) == len(row):
            rows.append(row)
    return np.unique(np.array(rows), axis=0)


def canonical_combinations(
    combos: np.ndarray, indices: Sequence[int], perms: np.ndarray
) -> np.ndarray:
    """The symmetry-canonical form of each combination of sites: its smallest image.

    Parameters
    ----------
    combos
        Shape (n_combinations, k): site indices, each row one combination.
    indices
        The site indices the permutations act on (sorted, as in :func:`site_permutations`).
    perms
        Output of :func:`site_permutations`.

    Returns
    -------
    numpy.ndarray
        Shape (n_combinations, k): per row the lexicographically smallest sorted image under
        the operations; two combinations are symmetry-equivalent iff their rows are equal.
    """
    idx = np.asarray(sorted(int(i) for i in indices), dtype=int)
    position = {int(w): a for a, w in enumerate(idx)}
    combos = np.asarray(combos, dtype=int)
    pos = np.vectorize(position.__getitem__, otypes=[int])(combos) if combos.size else combos
    n_base = int(idx.max()) + 1 if idx.size else 1
    k = combos.shape[1] if combos.ndim == 2 else 0
    out = np.empty((len(pos), k), dtype=int)
    # blocks keep the (operations x combinations x k) image array to a few tens of MB
    block = max(1, 2_000_000 // max(1, len(perms) * max(k, 1)))
    for start in range(0, len(pos), block):
        images = np.sort(perms[:, pos[start : start + block]], axis=-1)  # (n_ops, n, k)
        if k and n_base**k < 2**62:
            weights = n_base ** np.arange(k - 1, -1, -1, dtype=np.int64)
            best = np.argmin(images.astype(np.int64) @ weights, axis=0)  # lexicographic min
            out[start : start + block] = images[best, np.arange(images.shape[1])]
        else:
            for c in range(images.shape[1]):
                out[start + c] = min(tuple(images[o, c]) for o in range(images.shape[0]))
    return out


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
    w_idx = sorted(_w_indices(doped.structure))
    perms = site_permutations(doped.structure, w_idx, symprec)
    combos = np.array(list(combinations(candidates, n)), dtype=int).reshape(-1, n)
    canonical = canonical_combinations(combos, w_idx, perms)
    counts: dict[tuple[int, ...], int] = {}
    for row in canonical:
        key = tuple(int(w) for w in row)
        counts[key] = counts.get(key, 0) + 1
    configs = [_configuration(c, table, m) for c, m in counts.items()]
    return sorted(configs, key=lambda c: (sorted(c.shells), c.distances, c.w_indices))


def pick_seed(eligible: dict[int, float], tolerance: float = DEFAULT_SEED_TOLERANCE) -> int:
    """The seed rule: the lowest site index among the W within ``tolerance`` of the best value.

    Parameters
    ----------
    eligible
        W site index -> the value to minimise (a distance to the dopant, or a deviation from a
        requested distance), Å.
    tolerance
        Tie tolerance (Å): values within it of the smallest count as equal, so the choice does
        not flip with sub-tolerance changes such as those of a relaxation.

    Returns
    -------
    int
        The chosen W site index.
    """
    if not eligible:
        raise PolaronSeedError("no eligible W to seed a polaron on")
    if not (np.isfinite(tolerance) and tolerance >= 0):
        raise PolaronSeedError(f"seed tie tolerance {tolerance} must be a number >= 0 (Å)")
    best = min(eligible.values())
    return min(w for w, value in eligible.items() if value <= best + tolerance)


def seed_margin(eligible: dict[int, float], tolerance: float, pick: int) -> float:
    """How far (Å) the distances may move before :func:`pick_seed` would choose differently.

    The smaller of: the room of the chosen W inside the tie window (best + tolerance), and the
    gap from the window edge to every W of lower index outside it.  An estimate (it holds the
    best value fixed): a relaxation that changes distances by less than it keeps the seed.
    """
    edge = min(eligible.values()) + tolerance
    gaps = [edge - eligible[pick]] + [d - edge for w, d in eligible.items() if w < pick]
    return float(min(gaps))


def w_dopant_distances(doped: DopedStructure) -> dict[int, float]:
    """Every W site index -> its distance (Å, nearest periodic image) to the nearest dopant."""
    s = doped.structure
    w_idx = sorted(_w_indices(s))
    dopant_frac = np.array([s[i].frac_coords for i in doped.dopant_indices])
    w_frac = np.array([s[i].frac_coords for i in w_idx])
    dist = s.lattice.get_all_distances(w_frac, dopant_frac).min(axis=1)
    return {w: float(d) for w, d in zip(w_idx, dist, strict=True)}


def auto_polaron_seeds(
    doped: DopedStructure, tolerance: float = DEFAULT_SEED_TOLERANCE
) -> PolaronConfiguration:
    """The default placement of the donated electrons, by a rule stable under relaxation.

    One dopant donating several electrons (Mg, Ca, Zn: 2; Al: 3): the first ⌈n/2⌉ go on
    shell 1, the rest on shell 2 of the W around it; several one-electron dopants (H, Li, ...):
    one W near each dopant.  Each seed is chosen by :func:`pick_seed` among the W of that shell
    (or all W, for several dopants) that are not framework neighbours of a seed already chosen
    (polarons repel): the lowest site index among those within ``tolerance`` Å of the nearest.
    "Nearest" alone is not stable: in γ-WO3 four shell-2 W lie within 0.07 Å, and which is
    nearest changes between the unrelaxed and the relaxed cell.

    Parameters
    ----------
    doped
        The doped structure.
    tolerance
        Tie tolerance of :func:`pick_seed` (Å), recorded in the build manifest.
    """
    table = _nearest_shell_table(doped)
    s = doped.structure
    chosen: list[int] = []

    def far_from_chosen(w: int) -> bool:
        return all(s.get_distance(w, c) > 4.6 for c in chosen)

    margins: list[float] = []

    def choose(options: dict[int, float]) -> int:
        free = {w: d for w, d in options.items() if w not in chosen}
        eligible = {w: d for w, d in free.items() if far_from_chosen(w)} or free
        pick = pick_seed(eligible, tolerance)
        margins.append(seed_margin(eligible, tolerance, pick))
        return pick

    n = doped.electrons_donated
    if len(doped.dopant_indices) == 1:
        plan = [1] * ((n + 1) // 2) + [2] * (n // 2)
        for shell in plan:
            options = {w: d for w, (sh, d) in table.items() if sh == shell and w not in chosen}
            if not options:
                raise PolaronSeedError(f"no free W in shell {shell} around the dopant")
            chosen.append(choose(options))
    else:
        per_dopant = n // len(doped.dopant_indices)
        w_idx = sorted(_w_indices(s))
        for d in doped.dopant_indices:
            dist = s.lattice.get_all_distances(
                s[d].frac_coords, np.array([s[w].frac_coords for w in w_idx])
            )[0]
            options = {w: float(x) for w, x in zip(w_idx, dist, strict=True)}
            for _ in range(per_dopant):
                chosen.append(choose(options))
    if any(w not in table for w in chosen):  # beyond the shells searched (several dopants)
        distances = w_dopant_distances(doped)
        table.update({w: (0, distances[w]) for w in chosen if w not in table})
    config = _configuration(chosen, table)
    margin_of = dict(zip(chosen, margins, strict=True))
    return replace(config, margins=tuple(margin_of[w] for w in config.w_indices))


def resolve_polaron_spec(
    doped: DopedStructure,
    spec: str | Sequence[int | str],
    tolerance: float = DEFAULT_DISTANCE_TOLERANCE,
) -> tuple[list[int], list[str]]:
    """Turn a ``--polarons`` specification into W site indices.

    Tokens, separated by commas (or given as a sequence), may be mixed:

    - ``37``: a 0-based site index (pymatgen order, as in ``polaronflow sites``);
    - ``ion:38``: a VASP ion number (1-based position in the POSCAR, as in OUTCAR's
      "magnetization (x)" table); ``ion:38`` is site index 37;
    - ``d:3.24``: the W whose distance to the nearest dopant is nearest 3.24 Å, chosen by
      :func:`pick_seed` among the W within ``tolerance`` of 3.24 Å (ties within ``tolerance``
      of the best go to the lowest index; W already chosen are skipped); an error when no W lies
      within ``tolerance`` of the distance.  It is resolved on the structure at hand: the
      unrelaxed supercell in ``build`` and the dry run, the relaxed one at run time.

    Parameters
    ----------
    doped
        The doped structure the indices refer to.
    spec
        The specification (string or sequence of ints / tokens).
    tolerance
        Tie and match tolerance for ``d:`` tokens (Å).

    Returns
    -------
    tuple[list[int], list[str]]
        The 0-based W site indices in the order given, and the token each came from.

    Raises
    ------
    PolaronSeedError
        A token that is not one of the forms above, an ion number out of range, or a distance
        with no W within the tolerance.
    """
    tokens = spec.replace(",", " ").split() if isinstance(spec, str) else [str(t) for t in spec]
    n_sites = len(doped.structure)
    distances: dict[int, float] | None = None
    chosen: list[int] = []
    for token in tokens:
        text = token.strip().lower()
        if text.startswith("ion:"):
            try:
                number = int(text[4:])
            except ValueError:
                raise PolaronSeedError(
                    f"polaron seed {token!r}: 'ion:' needs a VASP ion number (1-based), e.g. ion:38"
                ) from None
            if not 1 <= number <= n_sites:
                raise PolaronSeedError(
                    f"polaron seed {token!r}: VASP ion number {number} is out of range (this "
                    f"{n_sites}-site cell has ions 1..{n_sites})"
                )
            chosen.append(number - 1)
        elif text.startswith("d:"):
            try:
                target = float(text[2:])
            except ValueError:
                raise PolaronSeedError(
                    f"polaron seed {token!r}: 'd:' needs a distance in Å, e.g. d:3.24"
                ) from None
            if not (np.isfinite(target) and target > 0):
                raise PolaronSeedError(f"polaron seed {token!r}: the distance must be > 0 Å")
            if distances is None:
                distances = w_dopant_distances(doped)
            deviation = {w: abs(d - target) for w, d in distances.items() if w not in chosen}
            matching = {w: x for w, x in deviation.items() if x <= tolerance}
            if not matching:
                near = min(distances.values(), key=lambda d: abs(d - target))
                raise PolaronSeedError(
                    f"polaron seed {token!r}: no free W within {tolerance} Å of {target} Å from "
                    f"the dopant (the closest is at {near:.3f} Å; see 'polaronflow sites --json')"
                )
            chosen.append(pick_seed(matching, tolerance))
        else:
            try:
                chosen.append(int(text))
            except ValueError:
                raise PolaronSeedError(
                    f"polaron seed {token!r} is not valid: give 'auto', 'none', or comma-separated "
                    "0-based W site indices (37,0), VASP ion numbers (ion:38,ion:1) or distances "
                    "to the dopant in Å (d:3.24,d:6.24)"
                ) from None
    return chosen, tokens


def w_site_table(
    structure: Structure,
    cavities: list[Cavity],
    cavity: int,
    seed_tolerance: float = DEFAULT_SEED_TOLERANCE,
    gap: float = 1.0,
    max_distance: float = 9.0,
) -> dict:
    """Every W of ``structure`` with its distance to a cavity centre and its shell (JSON-ready).

    What ``polaronflow sites --json`` prints: a user picks seeds from it by 0-based index,
    VASP ion number (``ion:N``) or distance (``d:X``).

    Parameters
    ----------
    structure
        The host supercell.
    cavities
        Its cavities (:func:`~polaronflow.structures.sites.cavity_sites`).
    cavity
        Index of the cavity the distances are measured from (where a cation would sit).
    seed_tolerance
        Tie tolerance of the seed rule (Å); each shell reports the W the rule picks.
    gap
        Jump in distance (Å) that starts a new shell (as :func:`w_shells`).
    max_distance
        Radius (Å) of the shells; W farther away get shell ``None``.  The default 9 Å is the
        radius the build uses for seed shells, so shell numbers agree with the manifest.

    Returns
    -------
    dict
        ``cavity`` (index, orbit, fractional and Cartesian coordinates), ``cavities`` (index,
        orbit, fractional coordinates), ``seed_rule``, ``shells`` (number, count, d_min, d_max,
        rule_pick) and ``w_sites`` (index, vasp_ion, distance in Å, shell), nearest first.
    """
    cav = cavities[cavity]
    w_idx = sorted(_w_indices(structure))
    w_frac = np.array([structure[w].frac_coords for w in w_idx])
    dist = structure.lattice.get_all_distances(np.array([cav.frac_coords]), w_frac)[0]
    nearest = {w: float(d) for w, d in zip(w_idx, dist, strict=True)}
    shells = w_shells(structure, cav.cart_coords, gap=gap, max_distance=max_distance)
    shell_of_w: dict[int, int] = {}
    for shell in shells:
        for w, d in zip(shell.w_indices, shell.distances, strict=True):
            if w not in shell_of_w and abs(d - nearest[w]) < 1e-6:
                shell_of_w[w] = shell.number
    shell_rows = []
    for shell in shells:
        members = {w: nearest[w] for w, n in shell_of_w.items() if n == shell.number}
        pick = pick_seed(members, seed_tolerance) if members else None
        rule_pick = None
        if pick is not None:
            margin = round(seed_margin(members, seed_tolerance, pick), 4)
            rule_pick = {"index": pick, "vasp_ion": pick + 1, "margin": margin}
        shell_rows.append(
            {
                "number": shell.number,
                "count": shell.count,
                "d_min": round(shell.d_min, 4),
                "d_max": round(shell.d_max, 4),
                "rule_pick": rule_pick,
            }
        )
    return {
        "host_formula": structure.composition.formula.replace(" ", ""),
        "n_sites": len(structure),
        "cavity": {
            "index": cav.index,
            "orbit": cav.orbit,
            "frac_coords": [round(x, 6) for x in cav.frac_coords],
            "cart_coords": [round(x, 4) for x in cav.cart_coords],
        },
        "cavities": [
            {
                "index": c.index,
                "orbit": c.orbit,
                "frac_coords": [round(x, 6) for x in c.frac_coords],
            }
            for c in cavities
        ],
        "shell_radius": max_distance,
        "seed_rule": {
            "rule": SEED_RULE,
            "tie_tolerance": seed_tolerance,
            "note": "rule_pick applies the rule to a whole shell; 'auto' seeds also skip W that "
            "are framework neighbours of a seed already chosen, and measure from the dopant",
        },
        "indices": "index is the 0-based site index (as --polarons 37); vasp_ion = index + 1 is "
        "the 1-based POSCAR ion number (as --polarons ion:38); the dopant is appended after the "
        "host sites, so host indices do not change",
        "shells": shell_rows,
        "w_sites": [
            {
                "index": w,
                "vasp_ion": w + 1,
                "distance": round(nearest[w], 4),
                "shell": shell_of_w.get(w),
            }
            for w in sorted(w_idx, key=lambda w: (nearest[w], w))
        ],
    }
