"""Sites of a ReO3-like (perovskite without A cation) framework: cavities, W shells, O–H sites.

The A-site cavities are the centres of the cubes formed by eight corner-sharing WO6 octahedra.
They are found as exact centroids of those 8-W cubes by walking the W–W neighbour graph along
the three pseudo-cubic directions, so they work in any cell or supercell (pymatgen's Voronoi
interstitial finder misses the exact centres with default settings).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Structure

from polaronflow.errors import HostStructureError, InputError

#: Largest W–W distance counted as a framework edge (corner-sharing neighbours are 3.6–4.0 Å in
#: WO3; the next W–W distance, across a cube face, is ≈ 5.3 Å).
W_W_EDGE_MAX = 4.6
#: O–H bond length used to place protons (Å).
OH_BOND = 0.98


@dataclass(frozen=True)
class Cavity:
    """One A-site cavity: the centre of a cube of 8 framework cations."""

    index: int
    frac_coords: tuple[float, float, float]
    cart_coords: tuple[float, float, float]
    #: index of the symmetry orbit the cavity belongs to (0, 1, ...).
    orbit: int
    #: indices (into the structure) of the 8 cations at the cube corners.
    w_indices: tuple[int, ...]


@dataclass(frozen=True)
class WShell:
    """Cations (W by default) at similar distance from a point: one coordination shell."""

    #: 1 for the nearest shell, 2 for the next, ...
    number: int
    #: number of cation sites in the shell in the infinite crystal (periodic images counted).
    count: int
    #: shortest and longest distance in the shell, Å.
    d_min: float
    d_max: float
    #: structure indices of the cations in the shell (each once, even if several images are in).
    w_indices: tuple[int, ...]
    #: distance of each entry of ``w_indices`` to the point (its nearest image), Å.
    distances: tuple[float, ...]


@dataclass(frozen=True)
class BridgingOxygen:
    """An O bridging two framework cations, with the place a proton would take on it."""

    o_index: int
    #: the two cations the O bridges.
    w_indices: tuple[int, int]
    #: the W–O–W angle, degrees.
    w_o_w_angle: float
    #: Cartesian position of an H at :data:`OH_BOND` Å along the outer bisector of W–O–W.
    h_cart_coords: tuple[float, float, float]
    #: the cavity the O–H points into (index into :func:`cavity_sites`).
    cavity_index: int
    #: W–O–H angle, degrees (≈ 101° in γ-WO3).
    w_o_h_angle: float = field(default=float("nan"))


def _cation_indices(structure: Structure, element: str) -> list[int]:
    idx = [i for i, site in enumerate(structure) if site.specie.symbol == element]
    if not idx:
        raise HostStructureError(
            f"structure {structure.composition.formula} has no {element}: cannot find the "
            f"{element} framework"
        )
    return idx


def _neighbour_table(
    structure: Structure, cations: list[int]
) -> list[list[tuple[int, np.ndarray, np.ndarray]]]:
    """Per cation: list of (position in ``cations``, image, Cartesian vector) of its edges."""
    sub = Structure(
        structure.lattice,
        [structure[i].specie for i in cations],
        [structure[i].frac_coords for i in cations],
    )
    centres, points, images, _ = sub.get_neighbor_list(W_W_EDGE_MAX)
    table: list[list[tuple[int, np.ndarray, np.ndarray]]] = [[] for _ in cations]
    frac = sub.frac_coords
    for c, p, img in zip(centres, points, images, strict=True):
        vec = structure.lattice.get_cartesian_coords(frac[p] + img - frac[c])
        table[c].append((int(p), np.asarray(img, dtype=int), vec))
    return table


def _pseudo_cubic_axes(structure: Structure, table) -> np.ndarray:
    """Three unit vectors along the framework's W–W edges, each closest to a lattice vector."""
    vectors = np.array([v for _, _, v in table[0]])
    if len(vectors) != 6:
        raise HostStructureError(
            f"structure {structure.composition.formula} is not ReO3-like: the first cation has "
            f"{len(vectors)} cation neighbours within {W_W_EDGE_MAX} Å (6 expected)"
        )
    units = vectors / np.linalg.norm(vectors, axis=1)[:, None]
    axes = []
    available = list(range(6))
    for lat_vec in structure.lattice.matrix:
        lat_unit = lat_vec / np.linalg.norm(lat_vec)
        best = max(available, key=lambda k: abs(units[k] @ lat_unit))
        axis = units[best] * np.sign(units[best] @ lat_unit or 1.0)
        axes.append(axis)
        # drop the chosen edge and its opposite
        available = [k for k in available if abs(units[k] @ axis) < 0.7]
    return np.array(axes)


def _step_table(structure: Structure, cations: list[int]):
    """For every cation and pseudo-cubic direction: the neighbour (position, image) along +axis."""
    table = _neighbour_table(structure, cations)
    axes = _pseudo_cubic_axes(structure, table)
    steps = np.zeros((len(cations), 3), dtype=int)
    step_images = np.zeros((len(cations), 3, 3), dtype=int)
    for c, edges in enumerate(table):
        if len(edges) != 6:
            raise HostStructureError(
                f"structure {structure.composition.formula} is not ReO3-like: cation site "
                f"{cations[c]} has {len(edges)} cation neighbours within {W_W_EDGE_MAX} Å "
                "(6 expected)"
            )
        for k, axis in enumerate(axes):
            cosines = [(v @ axis) / np.linalg.norm(v) for _, _, v in edges]
            best = int(np.argmax(cosines))
            if cosines[best] < 0.8:
                raise HostStructureError(
                    f"structure {structure.composition.formula} is not ReO3-like: cation site "
                    f"{cations[c]} has no neighbour along pseudo-cubic axis {k + 1}"
                )
            steps[c, k] = edges[best][0]
            step_images[c, k] = edges[best][1]
    return steps, step_images


#: Recent :func:`cavity_sites` results by structure content: a search plans hundreds of
#: candidates in one host, and each insertion asked for the same cavities again (~0.05 s each).
_CAVITY_CACHE: dict[tuple, tuple[Cavity, ...]] = {}
_CAVITY_CACHE_SIZE = 8


def _structure_key(structure: Structure, *extra: object) -> tuple:
    """Exact content of a structure as a hashable key: lattice, species, coordinates and the
    magnetic moments (spglib, through SpacegroupAnalyzer, lowers the symmetry by them)."""
    return (
        structure.lattice.matrix.tobytes(),
        tuple(site.species_string for site in structure),
        np.ascontiguousarray(structure.frac_coords).tobytes(),
        repr(structure.site_properties.get("magmom")),
        *extra,
    )


def cavity_sites(structure: Structure, element: str = "W", symprec: float = 0.01) -> list[Cavity]:
    """All A-site cavities of a ReO3-like framework: the centroids of its 8-cation cubes.

    Parameters
    ----------
    structure
        A WO3-like host (any cell or supercell).  Sites of other elements (dopants) are ignored
        for finding the cubes, but they do lower the symmetry used for the orbits.
    element
        The framework cation.
    symprec
        Tolerance (Å) for the symmetry analysis that groups cavities into orbits.

    Returns
    -------
    list[Cavity]
        One per framework cation (8 in the 32-atom γ-WO3 cell, 64 in its 2x2x2 supercell), in a
        deterministic order: by orbit, then by fractional coordinates.
    """
    key = _structure_key(structure, element, symprec)
    cached = _CAVITY_CACHE.get(key)
    if cached is None:
        cached = tuple(_cavity_sites(structure, element, symprec))
        if len(_CAVITY_CACHE) >= _CAVITY_CACHE_SIZE:
            _CAVITY_CACHE.pop(next(iter(_CAVITY_CACHE)))
        _CAVITY_CACHE[key] = cached
    return list(cached)


def _cavity_sites(structure: Structure, element: str, symprec: float) -> list[Cavity]:
    cations = _cation_indices(structure, element)
    steps, step_images = _step_table(structure, cations)
    frac = np.array([structure[i].frac_coords for i in cations])
    centres = []
    corners_all = []
    for start in range(len(cations)):
        corners = []
        positions = []
        for corner in range(8):
            pos, image = start, np.zeros(3, dtype=int)
            for k in range(3):
                if corner >> k & 1:
                    image = image + step_images[pos, k]
                    pos = steps[pos, k]
            corners.append(cations[pos])
            positions.append(frac[pos] + image)
        centre = np.mean(positions, axis=0)
        centres.append(np.mod(centre, 1.0))
        corners_all.append(tuple(sorted(corners)))
    centres_arr = np.array(centres)
    centres_arr[np.isclose(centres_arr, 1.0, atol=1e-8)] = 0.0
    orbits = _orbits(structure, centres_arr, symprec)
    # Orbits are numbered by their lexicographically smallest member so that, in the γ-WO3
    # setting, orbit 0 is the one containing (0, 1/4, 0) ("type A") and orbit 1 (0, 1/4, 1/2).
    keys = [tuple(np.round(c, 4)) for c in centres_arr]
    first_member = {}
    for i, label in enumerate(orbits):
        first_member[label] = min(first_member.get(label, keys[i]), keys[i])
    orbit_relabel = {
        label: rank for rank, label in enumerate(sorted(first_member, key=first_member.get))
    }
    order = sorted(range(len(centres_arr)), key=lambda i: (orbit_relabel[orbits[i]], keys[i]))
    cavities = []
    for new_index, i in enumerate(order):
        cart = structure.lattice.get_cartesian_coords(centres_arr[i])
        cavities.append(
            Cavity(
                index=new_index,
                frac_coords=tuple(float(x) for x in centres_arr[i]),
                cart_coords=tuple(float(x) for x in cart),
                orbit=orbit_relabel[orbits[i]],
                w_indices=corners_all[i],
            )
        )
    return cavities


def symmetry_operations(structure: Structure, symprec: float = 0.01):
    """Space-group operations of ``structure`` as (rotation, translation) in fractional coords."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        ops = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetry_operations()
    except Exception:  # spglib can fail on odd cells; identity only is always valid
        return [(np.eye(3), np.zeros(3))]
    return [(op.rotation_matrix, op.translation_vector) for op in ops]


def _orbits(structure: Structure, points: np.ndarray, symprec: float) -> list[int]:
    ops = symmetry_operations(structure, symprec)
    tol = max(symprec, 1e-3) * 5 / min(structure.lattice.abc)
    labels = [-1] * len(points)
    next_label = 0
    for i in range(len(points)):
        if labels[i] >= 0:
            continue
        labels[i] = next_label
        for rot, trans in ops:
            image = np.mod(rot @ points[i] + trans, 1.0)
            diff = points - image
            diff -= np.round(diff)
            for j in np.nonzero(np.all(np.abs(diff) < tol, axis=1))[0]:
                if labels[j] < 0:
                    labels[j] = next_label
        next_label += 1
    return labels


def w_shells(
    structure: Structure,
    point,
    element: str = "W",
    gap: float = 1.0,
    max_distance: float = 9.0,
    frac: bool = False,
) -> list[WShell]:
    """The shells of ``element`` sites around a point, grouped by distance.

    Distances are to every periodic image within ``max_distance``; a new shell starts where the
    sorted distances jump by more than ``gap`` Å.  Around an A-site cavity of γ-WO3 this gives
    8 W at 3.0–3.5 Å, 24 W at 5.9–6.6 Å and 24 W at 7.9–8.5 Å.

    Parameters
    ----------
    structure
        Any periodic structure.
    point
        Cartesian coordinates (Å), or fractional with ``frac=True``.
    element
        Which cation to count.
    gap
        Smallest jump in distance (Å) that separates two shells.
    max_distance
        Radius (Å) of the sphere searched.
    """
    if gap <= 0 or max_distance <= 0:
        raise InputError(f"gap ({gap}) and max_distance ({max_distance}) must be positive (Å)")
    cations = set(_cation_indices(structure, element))
    point = np.asarray(point, dtype=float)
    cart = structure.lattice.get_cartesian_coords(point) if frac else point
    found = structure.get_sites_in_sphere(cart, max_distance)
    entries = sorted(
        (
            (float(n.nn_distance), int(n.index))
            for n in found
            if n.index in cations and n.nn_distance > 0.1
        ),
    )
    shells: list[list[tuple[float, int]]] = []
    for entry in entries:
        if shells and entry[0] - shells[-1][-1][0] <= gap:
            shells[-1].append(entry)
        else:
            shells.append([entry])
    result = []
    for number, members in enumerate(shells, start=1):
        nearest: dict[int, float] = {}
        for d, idx in members:
            nearest[idx] = min(d, nearest.get(idx, np.inf))
        idx_sorted = sorted(nearest, key=lambda i: (nearest[i], i))
        result.append(
            WShell(
                number=number,
                count=len(members),
                d_min=members[0][0],
                d_max=members[-1][0],
                w_indices=tuple(idx_sorted),
                distances=tuple(nearest[i] for i in idx_sorted),
            )
        )
    return result


def shell_of(shells: list[WShell], index: int) -> WShell | None:
    """The shell that contains structure site ``index`` (nearest image), or None."""
    best = None
    for shell in shells:
        if index in shell.w_indices:
            d = shell.distances[shell.w_indices.index(index)]
            if best is None or d < best[0]:
                best = (d, shell)
    return best[1] if best else None


def bridging_oxygens(
    structure: Structure,
    element: str = "W",
    cavities: list[Cavity] | None = None,
    bond_max: float = 2.6,
) -> list[BridgingOxygen]:
    """Every O that bridges two framework cations, with its proton position.

    The H is put :data:`OH_BOND` Å from the O along the outer bisector of the bent W–O–W unit
    (pointing away from the W–W midpoint, into a cavity), which gives W–O–H ≈ 101° in γ-WO3.
    For a straight W–O–W the direction is taken perpendicular to W–W towards the nearest cavity.
    """
    cations = set(_cation_indices(structure, element))
    if cavities is None:
        cavities = cavity_sites(structure, element)
    cavity_frac = np.array([c.frac_coords for c in cavities])
    lattice = structure.lattice
    all_sites = structure.sites
    o_indices = [i for i, site in enumerate(all_sites) if site.specie.symbol == "O"]
    # One neighbour search for all O (one per O was most of the time of a proton insertion).
    # Same pairs and distances as ``get_neighbors`` per site; only the order of an O's two W
    # may differ, and nothing below depends on it (the bisector is symmetric in the two).
    centres, points, images, _ = structure.get_neighbor_list(
        bond_max, sites=[all_sites[i] for i in o_indices]
    )
    cation_bonds: dict[int, list[tuple[int, np.ndarray]]] = {}
    frac = structure.frac_coords
    for c, p, img in zip(centres.tolist(), points.tolist(), images, strict=True):
        if p in cations:
            cation_bonds.setdefault(c, []).append((p, frac[p] + img))
    result = []
    for k, o_index in enumerate(o_indices):
        neighbours = cation_bonds.get(k, [])
        if len(neighbours) != 2:
            continue
        site = all_sites[o_index]
        o_cart = site.coords
        bonds = [lattice.get_cartesian_coords(f) - o_cart for _, f in neighbours]
        units = [b / np.linalg.norm(b) for b in bonds]
        angle = float(np.degrees(np.arccos(np.clip(units[0] @ units[1], -1, 1))))
        outward = -(units[0] + units[1])
        if np.linalg.norm(outward) < 1e-3:
            # straight W–O–W: point at the nearest cavity, perpendicular to the W–W line
            dists = structure.lattice.get_all_distances(site.frac_coords, cavity_frac)[0]
            target_frac = cavity_frac[int(np.argmin(dists))]
            _, image = structure.lattice.get_distance_and_image(site.frac_coords, target_frac)
            to_cav = structure.lattice.get_cartesian_coords(target_frac + image) - o_cart
            outward = to_cav - (to_cav @ units[0]) * units[0]
        outward = outward / np.linalg.norm(outward)
        h_cart = o_cart + OH_BOND * outward
        h_frac = structure.lattice.get_fractional_coords(h_cart)
        dists = structure.lattice.get_all_distances(h_frac, cavity_frac)[0]
        w_o_h = float(np.degrees(np.arccos(np.clip(units[0] @ outward, -1, 1))))
        result.append(
            BridgingOxygen(
                o_index=o_index,
                w_indices=(int(neighbours[0][0]), int(neighbours[1][0])),
                w_o_w_angle=angle,
                h_cart_coords=tuple(float(x) for x in h_cart),
                cavity_index=int(np.argmin(dists)),
                w_o_h_angle=w_o_h,
            )
        )
    return result
