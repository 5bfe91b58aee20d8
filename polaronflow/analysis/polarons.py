"""Small polarons from site moments: where they sit, how far from the dopant, how they spread.

Only numpy is needed (no pymatgen): distances are minimum-image distances computed here, so
``polaronflow analyze`` stays fast.  The method and its thresholds are explained in
``docs/analysis.md``; in short:

* a *polaron* is a host-cation site (W by default) with ``|m| >= threshold``.  The default
  0.3 μB sits between the moment a W5+ 5d1 small polaron carries inside the W PAW sphere in
  SCAN+U (≈ 0.5–0.8 μB; the paper's two are 0.68 and 0.59 μB) and the moments on its tails
  (≤ ≈ 0.15 μB on the in-plane neighbours); a delocalised electron spreads ≲ 0.05 μB per W;
* *dopants* are the sites of elements that are not part of the host (host = the cation and
  O by default), or the sites of an element given explicitly;
* the *shell* of a polaron is the rank of its distance among the host-cation distances around
  the nearest dopant after grouping them: a new shell starts wherever two consecutive sorted
  distances differ by more than ``shell_gap`` (1.0 Å, as ``structures.sites.w_shells``;
  shells around an A-site cavity in WO3 are 3.0–3.5, 5.9–6.6, 7.9–8.5 Å);
* the *plane* a polaron spreads in is spanned by the four nearest-neighbour host cations with
  the largest |m|; its normal is reported as the nearest low-index Miller plane of the cell.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import product

import numpy as np

from polaronflow.analysis.models import PolaronAnalysis, PolaronSite
from polaronflow.analysis.rundata import RunData
from polaronflow.dopants import DOPANT_ELECTRONS
from polaronflow.errors import InputError, RunQualityError

#: Electrons one dopant atom donates to the host nominally (the project's one table).
ION_ELECTRONS = DOPANT_ELECTRONS

#: Default |m| above which a host-cation site counts as a polaron, μB (see module docstring).
DEFAULT_THRESHOLD = 0.3
#: Consecutive sorted cation–dopant distances further apart than this start a new shell, Å.
DEFAULT_SHELL_GAP = 1.0
#: Host-cation neighbours within this factor of the nearest cation–cation distance are the
#: nearest neighbours (WO3: 3.67–3.86 Å; the next W shell is at ≈ 5.3 Å, i.e. ×1.4).
NN_FACTOR = 1.25
#: Below this mean |m| on the four strongest neighbours no plane is reported, μB.
MIN_TAIL_MOMENT = 0.005
#: Below this plane contrast (see :class:`~polaronflow.analysis.models.PolaronSite`) the four
#: strongest neighbours are not distinguished from the others and no plane is reported.
MIN_PLANE_CONTRAST = 0.3


# ------------------------------------------------------------------------ geometry helpers
def minimum_image_vectors(
    lattice: np.ndarray, frac_from: np.ndarray, frac_to: np.ndarray
) -> np.ndarray:
    """Shortest Cartesian vectors from one point to many under periodic boundary conditions.

    Parameters
    ----------
    lattice
        (3, 3) row vectors of the cell, Å.
    frac_from
        (3,) fractional coordinates of the origin point.
    frac_to
        (n, 3) fractional coordinates of the targets.

    Returns
    -------
    numpy.ndarray
        (n, 3) Cartesian vectors, Å.  The 27 neighbouring images of the wrapped difference are
        searched, which is exact for any cell that is not extremely skewed.
    """
    lattice = np.asarray(lattice, dtype=float)
    diff = np.asarray(frac_to, dtype=float) - np.asarray(frac_from, dtype=float)
    diff -= np.round(diff)
    shifts = np.array(list(product((-1, 0, 1), repeat=3)), dtype=float)
    cand = (diff[:, None, :] + shifts[None, :, :]) @ lattice  # (n, 27, 3)
    best = np.argmin(np.einsum("nij,nij->ni", cand, cand), axis=1)
    return cand[np.arange(len(diff)), best]


def group_shells(distances: Sequence[float], shell_gap: float = DEFAULT_SHELL_GAP) -> np.ndarray:
    """1-based shell number of each distance (a new shell wherever sorted values jump).

    Parameters
    ----------
    distances
        Distances from one centre, Å.
    shell_gap
        A jump larger than this between consecutive sorted distances starts a new shell, Å.

    Returns
    -------
    numpy.ndarray
        Integer shell per input distance, same order as the input.
    """
    d = np.asarray(distances, dtype=float)
    order = np.argsort(d, kind="stable")
    shells = np.empty(len(d), dtype=int)
    shell = 1
    for rank, idx in enumerate(order):
        if rank and d[idx] - d[order[rank - 1]] > shell_gap:
            shell += 1
        shells[idx] = shell
    return shells


def _format_hkl(hkl: Sequence[int]) -> str:
    return "(" + "".join(str(int(h)) if h >= 0 else f"-{abs(int(h))}" for h in hkl) + ")"


def nearest_miller_plane(
    lattice: np.ndarray, normal: np.ndarray, max_index: int = 2
) -> tuple[list[int], float]:
    """The low-index Miller plane (hkl) of a cell whose normal is closest to ``normal``.

    Parameters
    ----------
    lattice
        (3, 3) row vectors of the cell, Å.
    normal
        Cartesian plane normal (any length, any sign).
    max_index
        Largest |h|, |k|, |l| tried.

    Returns
    -------
    tuple
        ``([h, k, l], angle)`` with the first non-zero index positive and the angle between the
        given normal and the (hkl) normal in degrees.  Among planes within 1° of the best
        match the one with the smallest indices wins.
    """
    lattice = np.asarray(lattice, dtype=float)
    n = np.asarray(normal, dtype=float)
    n = n / np.linalg.norm(n)
    recip = np.linalg.inv(lattice).T  # rows: reciprocal vectors without 2π
    candidates = [
        hkl
        for hkl in product(range(-max_index, max_index + 1), repeat=3)
        if any(hkl) and np.gcd.reduce(np.abs(hkl)) == 1
    ]
    candidates.sort(key=lambda hkl: (sum(abs(h) for h in hkl), max(abs(h) for h in hkl)))
    best_hkl, best_angle = None, 180.0
    for hkl in candidates:
        g = np.asarray(hkl, dtype=float) @ recip
        cos = abs(float(g @ n) / np.linalg.norm(g))
        angle = float(np.degrees(np.arccos(min(1.0, cos))))
        if angle < best_angle - 1.0:
            best_hkl, best_angle = list(hkl), angle
    assert best_hkl is not None
    first = next(h for h in best_hkl if h != 0)
    if first < 0:
        best_hkl = [-h for h in best_hkl]
    return best_hkl, best_angle


def dopant_indices(
    species: Sequence[str],
    host_elements: Iterable[str],
    dopant: str | Sequence[str] | Sequence[int] | None = None,
) -> list[int]:
    """Indices of the dopant sites.

    Parameters
    ----------
    species
        Element symbol per site.
    host_elements
        Elements that make up the host (e.g. ``{"W", "O"}``); every other element is a dopant
        unless ``dopant`` is given.
    dopant
        An element symbol, a list of symbols, or a list of site indices that are the dopants.

    Raises
    ------
    InputError
        An index out of range or an element the structure does not hold.
    """
    if dopant is None:
        host = set(host_elements)
        return [i for i, s in enumerate(species) if s not in host]
    items = [dopant] if isinstance(dopant, str | int) else list(dopant)
    if all(isinstance(x, int | np.integer) for x in items):
        bad = [int(x) for x in items if not 0 <= int(x) < len(species)]
        if bad:
            raise InputError(f"dopant site index {bad[0]} out of range 0..{len(species) - 1}")
        return sorted(int(x) for x in items)
    wanted = {str(x) for x in items}
    missing = wanted - set(species)
    if missing:
        present = ", ".join(sorted(set(species)))
        raise InputError(
            f"dopant element {sorted(missing)[0]!r} is not in the structure (elements: {present})"
        )
    return [i for i, s in enumerate(species) if s in wanted]


def electrons_from_dopants(elements: Sequence[str]) -> float | None:
    """Nominal electrons the dopant atoms donate (None when an element is not tabulated)."""
    total = 0
    for el in elements:
        if el not in ION_ELECTRONS:
            return None
        total += ION_ELECTRONS[el]
    return float(total)


def added_electrons(run: RunData) -> float | None:
    """Electrons added to (positive) or removed from the neutral cell through NELECT, e.

    NELECT minus the valence electrons of the POTCARs (ZVAL per species block × its sites);
    None when the run does not record both.
    """
    nelect = run.parameters.get("NELECT", run.incar.get("NELECT"))
    blocks = run.blocks()
    if nelect is None or not run.zval or len(run.zval) != len(blocks):
        return None
    neutral = sum(z * n for z, (_, n) in zip(run.zval, blocks, strict=True))
    extra = float(nelect) - neutral
    return 0.0 if abs(extra) < 1e-3 else extra


def _expected_electrons(
    run: RunData, dopant_els: Sequence[str], notes: list[str]
) -> tuple[float | None, str | None]:
    """Electrons expected to localise: dopants' nominal donation + electrons added by NELECT."""
    donated = electrons_from_dopants(dopant_els) if dopant_els else 0.0
    if donated is None:
        unknown = sorted(set(dopant_els) - set(ION_ELECTRONS))
        notes.append(
            f"electrons donated by {', '.join(unknown)} unknown: give them with --electrons N"
        )
        return None, None
    extra = added_electrons(run)
    parts = []
    if dopant_els:
        parts.append(f"{donated:g} from {''.join(sorted(set(dopant_els)))} (nominal)")
    if extra is None:
        if not dopant_els:
            return None, None  # pristine cell, NELECT unknown: cannot say
        return donated, parts[0] + "; NELECT not checked (no NELECT/ZVAL read)"
    if extra:
        parts.append(f"{extra:+g} through NELECT")
    return donated + extra, "; ".join(parts) or "none: neutral cell without dopants (NELECT)"


# ------------------------------------------------------------------------------- analysis
def _require_moments(run: RunData) -> np.ndarray:
    if run.ispin != 2:
        raise RunQualityError(
            f"{run.path}: ISPIN = {run.ispin}: a spin-unpolarised run has no moments, so no "
            "polaron analysis is possible (run with ISPIN = 2)"
        )
    if run.site_moments is None:
        if run.files and "outcar" not in run.files:
            raise RunQualityError(
                f"{run.path}: no OUTCAR: site moments are read from its magnetization table"
            )
        lorbit = run.incar.get("LORBIT", run.parameters.get("LORBIT"))
        lorbit = 0 if lorbit in (None, False) else lorbit
        raise RunQualityError(
            f"{run.path}: no site moments in the OUTCAR (LORBIT = {lorbit}); polarons need the "
            "per-site magnetisation table: rerun with LORBIT = 11"
        )
    if run.lattice is None or run.frac_coords is None:
        raise RunQualityError(f"{run.path}: no final structure was read")
    moments = np.asarray(run.site_moments, dtype=float)
    if moments.shape != (run.nsites,):
        raise RunQualityError(f"{run.path}: {moments.shape[0]} site moments for {run.nsites} sites")
    return moments


def analyze_polarons(
    run: RunData,
    *,
    host_element: str = "W",
    host_elements: Iterable[str] | None = None,
    dopant: str | Sequence[str] | Sequence[int] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    shell_gap: float = DEFAULT_SHELL_GAP,
    nn_cutoff: float | None = None,
    electrons: float | None = None,
) -> PolaronAnalysis:
    """Find the small polarons of a spin-polarised run and describe them.

    Parameters
    ----------
    run
        A finished run with site moments (ISPIN = 2, LORBIT >= 10) and a final structure.
    host_element
        Cation whose sites can hold a polaron (W by default).
    host_elements
        Elements of the host; default ``{host_element, "O"}``.  Other elements are dopants.
    dopant
        Explicit dopants: element symbol(s) or site indices (overrides ``host_elements``).
    threshold
        |m| at or above which a host-cation site is a polaron, μB.
    shell_gap
        Gap between consecutive sorted distances that starts a new shell, Å.
    nn_cutoff
        Host-cation nearest-neighbour cut-off, Å; default 1.25 × the nearest cation–cation
        distance of each polaron.
    electrons
        Electrons expected to localise; default from the dopants (:data:`ION_ELECTRONS`).
        Give it for runs without a dopant (an added electron, a vacancy).

    Returns
    -------
    PolaronAnalysis

    Raises
    ------
    RunQualityError
        ISPIN = 1, or no site moments (LORBIT = 0), or no final structure.
    InputError
        The host element is absent, or the dopant specification does not fit the structure.
    """
    moments = _require_moments(run)
    if threshold <= 0:
        raise InputError(f"polaron threshold must be > 0 μB, got {threshold}")
    species = list(run.species)
    cations = [i for i, s in enumerate(species) if s == host_element]
    if not cations:
        present = ", ".join(sorted(set(species)))
        raise InputError(
            f"{run.path}: no {host_element} sites to hold polarons (elements: {present}); "
            "choose the host cation with --cation"
        )
    hosts = set(host_elements) if host_elements is not None else {host_element, "O"}
    dopants = dopant_indices(species, hosts, dopant)
    if set(dopants) & set(cations):
        raise InputError(f"{run.path}: a dopant site is also a {host_element} host site")
    dopant_els = [species[i] for i in dopants]
    notes: list[str] = []
    source = "given" if electrons is not None else None
    if electrons is None:
        electrons, source = _expected_electrons(run, dopant_els, notes)

    lattice = np.asarray(run.lattice, dtype=float)
    frac = np.asarray(run.frac_coords, dtype=float)
    cat_idx = np.asarray(cations)
    cat_moments = moments[cat_idx]
    is_polaron = np.abs(cat_moments) >= threshold
    polaron_idx = [int(i) for i in cat_idx[is_polaron]]
    polaron_idx.sort(key=lambda i: -abs(moments[i]))
    below = cat_idx[~is_polaron]
    other_site = int(below[np.argmax(np.abs(moments[below]))]) if below.size else None

    # Distances from every dopant to every cation, and the shells around each dopant.
    dop_dist: dict[int, np.ndarray] = {}
    dop_shells: dict[int, np.ndarray] = {}
    for d in dopants:
        vec = minimum_image_vectors(lattice, frac[d], frac[cat_idx])
        dist = np.linalg.norm(vec, axis=1)
        dop_dist[d] = dist
        dop_shells[d] = group_shells(dist, shell_gap)
    position = {int(c): k for k, c in enumerate(cat_idx)}

    sites: list[PolaronSite] = []
    cutoffs: list[float] = []
    polaron_set = set(polaron_idx)
    for i in polaron_idx:
        m = float(moments[i])
        site = PolaronSite(
            index=i,
            ion=i + 1,
            element=species[i],
            moment=m,
            frac_coords=[float(x) for x in frac[i]],
        )
        if dopants:
            k = position[i]
            nearest = min(dopants, key=lambda d: dop_dist[d][k])
            site.dopant_index = nearest
            site.dopant_ion = nearest + 1
            site.dopant_element = species[nearest]
            site.distance_to_dopant = float(dop_dist[nearest][k])
            site.shell = int(dop_shells[nearest][k])
        _describe_tails(
            site, i, m, lattice, frac, cat_idx, moments, polaron_set, nn_cutoff, cutoffs
        )
        sites.append(site)

    total = run.total_moment
    flags: list[str] = []
    count = len(sites)
    if electrons is None and count:
        notes.append(
            f"{count} polaron(s) but the electrons expected are unknown: give them with "
            "--electrons N (an added electron, a vacancy, an untabulated dopant)"
        )
    if electrons is not None:
        n_expected = round(electrons)
        if count < n_expected:
            flags.append("missing")
            if count == 0 and total is not None and abs(abs(total) - electrons) < 0.5:
                flags.append("delocalised")
                notes.append(
                    f"total moment {total:.2f} μB matches the {electrons:g} electrons but no "
                    f"{host_element} site reaches {threshold} μB: the electrons are delocalised"
                )
            else:
                notes.append(f"{count} polaron(s) for {electrons:g} electrons donated")
        elif count > n_expected:
            flags.append("extra")
            notes.append(f"{count} polarons but only {electrons:g} electrons donated")
    signs = {int(np.sign(s.moment)) for s in sites}
    if len(signs) > 1:
        up = sum(1 for s in sites if s.moment > 0)
        notes.append(f"polarons with antiparallel spins ({up} up, {count - up} down)")
    elif count >= 2:
        notes.append(f"all {count} polarons with parallel spins")
    if other_site is not None:
        notes.append(
            f"largest {host_element} moment below the {threshold:g} μB threshold: "
            f"{moments[other_site]:+.3f} μB on ion {other_site + 1}"
        )
    return PolaronAnalysis(
        path=str(run.path),
        synthetic=run.synthetic,
        host_element=host_element,
        threshold=threshold,
        dopant_indices=dopants,
        dopant_ions=[d + 1 for d in dopants],
        dopant_elements=dopant_els,
        electrons_donated=electrons,
        electrons_source=source,
        total_moment=None if total is None else float(total),
        sum_site_moments=float(moments.sum()),
        polaron_count=count,
        polarons=sites,
        largest_other_moment=None if other_site is None else abs(float(moments[other_site])),
        largest_below_moment=None if other_site is None else float(moments[other_site]),
        largest_below_ion=None if other_site is None else other_site + 1,
        nn_cutoff=max(cutoffs) if cutoffs else nn_cutoff,
        flags=flags,
        notes=notes,
    )


def _describe_tails(
    site: PolaronSite,
    i: int,
    m: float,
    lattice: np.ndarray,
    frac: np.ndarray,
    cat_idx: np.ndarray,
    moments: np.ndarray,
    polaron_set: set[int],
    nn_cutoff: float | None,
    cutoffs: list[float],
) -> None:
    """Fill neighbours, tail fraction and plane of one polaron centred on site ``i``."""
    others = cat_idx[cat_idx != i]
    if others.size == 0:
        return
    vec = minimum_image_vectors(lattice, frac[i], frac[others])
    dist = np.linalg.norm(vec, axis=1)
    cutoff = nn_cutoff if nn_cutoff is not None else NN_FACTOR * float(dist.min())
    cutoffs.append(cutoff)
    # Another polaron centre next door is not this polaron's tail.
    keep = (dist <= cutoff) & np.array([int(j) not in polaron_set for j in others])
    nb, nb_vec, nb_dist = others[keep], vec[keep], dist[keep]
    nb_m = moments[nb]
    site.neighbour_indices = [int(j) for j in nb]
    site.neighbour_ions = [int(j) + 1 for j in nb]
    site.neighbour_moments = [float(x) for x in nb_m]
    site.neighbour_distances = [float(x) for x in nb_dist]
    if nb.size == 0:
        return
    tail = float(np.sum(nb_m) * np.sign(m))
    site.tail_fraction = tail / (abs(m) + tail) if abs(m) + tail != 0 else None
    if nb.size < 3:
        return
    order = np.argsort(-np.abs(nb_m), kind="stable")
    top = order[:4]
    rest = order[4:]
    mean_top = float(np.mean(np.abs(nb_m[top])))
    mean_rest = float(np.mean(np.abs(nb_m[rest]))) if rest.size else 0.0
    site.plane_contrast = (mean_top - mean_rest) / mean_top if mean_top > 0 else None
    if mean_top < MIN_TAIL_MOMENT or (site.plane_contrast or 0.0) < MIN_PLANE_CONTRAST:
        return
    # The plane through the centre that best contains the strongest neighbours.
    _, _, vt = np.linalg.svd(nb_vec[top])
    hkl, angle = nearest_miller_plane(lattice, vt[-1])
    site.plane_hkl = hkl
    site.plane = _format_hkl(hkl)
    site.plane_deviation = angle
