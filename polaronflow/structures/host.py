"""The host: room-temperature γ-WO3 (P2_1/n, 32 atoms) or a user's WO3-like structure.

The embedded γ-WO3 carries its provenance in ``structure.properties["provenance"]``: the
lattice is the experimental room-temperature neutron one, the internal coordinates an
LDA-relaxed set converted to the P2_1/n setting (see :data:`PROVENANCE`).  The workflow relaxes
the cell first, so the start only has to be the right phase; a user with the ICSD CIF passes it
to :func:`load_host` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure

from polaronflow.errors import HostStructureError, InputError

#: Experimental room-temperature lattice of γ-WO3 (Å, degrees).
EXPERIMENTAL_LATTICE = {
    "a": 7.30084,
    "b": 7.53889,
    "c": 7.68962,
    "alpha": 90.0,
    "beta": 90.892,
    "gamma": 90.0,
}

#: The asymmetric unit in P 1 21/n 1 (fractional); every site is Wyckoff 4e.
_ASYMMETRIC_UNIT: tuple[tuple[str, tuple[float, float, float]], ...] = (
    ("W", (0.73396, 0.01073, 0.27549)),
    ("W", (0.76639, 0.00889, 0.77699)),
    ("O", (0.99486, 0.04324, 0.22599)),
    ("O", (0.00457, 0.45753, 0.22573)),
    ("O", (0.79506, 0.75426, 0.26580)),
    ("O", (0.70850, 0.75497, 0.72449)),
    ("O", (0.72744, 0.98102, 0.00701)),
    ("O", (0.72704, 0.52386, 0.99234)),
)

#: Where the embedded structure comes from.
PROVENANCE = {
    "name": "gamma-WO3, P2_1/n (No. 14), 32 atoms",
    "lattice_source": (
        "experiment, neutron powder diffraction at room temperature: Woodward, Sleight & Vogt, "
        "J. Phys. Chem. Solids 56, 1305 (1995)"
    ),
    "coordinates_source": (
        "LDA-relaxed gamma-WO3 (public repository noemas/WO3, BULK/P21n_LDA_VASP.cif, P 1 21/c 1 "
        "setting) converted to P 1 21/n 1 by x' = -(x - z), y' = -y, z' = z and placed in the "
        "experimental lattice"
    ),
    "experimental_lattice": EXPERIMENTAL_LATTICE,
}

# Symmetry operations of P 1 21/n 1 (general position 4e).
_P21N_OPS = (
    (np.array([1, 1, 1]), np.array([0.0, 0.0, 0.0])),
    (np.array([-1, 1, -1]), np.array([0.5, 0.5, 0.5])),
    (np.array([-1, -1, -1]), np.array([0.0, 0.0, 0.0])),
    (np.array([1, -1, 1]), np.array([0.5, 0.5, 0.5])),
)

#: Largest W–O distance counted as a bond of the WO6 octahedron (Å).
W_O_BOND_MAX = 2.6


def gamma_wo3() -> Structure:
    """The 32-atom room-temperature γ-WO3 cell (P2_1/n) with its provenance.

    Returns
    -------
    Structure
        W8 O24, sites ordered W first; ``properties["provenance"]`` says where the lattice and
        the coordinates come from.
    """
    species: list[str] = []
    coords: list[np.ndarray] = []
    for element in ("W", "O"):
        for symbol, xyz in _ASYMMETRIC_UNIT:
            if symbol != element:
                continue
            for rot, shift in _P21N_OPS:
                species.append(symbol)
                coords.append(np.mod(rot * np.asarray(xyz) + shift, 1.0))
    lat = EXPERIMENTAL_LATTICE
    lattice = Lattice.from_parameters(
        lat["a"], lat["b"], lat["c"], lat["alpha"], lat["beta"], lat["gamma"]
    )
    structure = Structure(lattice, species, coords)
    structure.properties["provenance"] = dict(PROVENANCE)
    return structure


def load_host(path: str | Path) -> Structure:
    """Read a host structure from a CIF or POSCAR/CONTCAR file and check it is WO3-like.

    Parameters
    ----------
    path
        A CIF, POSCAR, CONTCAR or any format pymatgen's ``Structure.from_file`` reads.

    Raises
    ------
    HostStructureError
        When the file cannot be read or the structure is not a WO3-like framework.
    """
    path = Path(path)
    if not path.is_file():
        raise HostStructureError(f"host file {path} does not exist (give a CIF or POSCAR file)")
    try:
        structure = Structure.from_file(path)
    except Exception as exc:  # pymatgen raises many types for unreadable files
        raise HostStructureError(
            f"host file {path} could not be read as a crystal structure (CIF or POSCAR expected): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    validate_host(structure, name=str(path))
    structure.properties["provenance"] = {
        "name": structure.composition.reduced_formula,
        "source": f"user file {path.resolve()}",
    }
    return structure


def validate_host(structure: Structure, name: str = "host structure") -> None:
    """Check that ``structure`` is a WO3-like host: W and O present, every W octahedral.

    Raises
    ------
    HostStructureError
        Naming ``name`` and what is wrong (missing element, a W with the wrong O count, ...).
    """
    elements = {el.symbol for el in structure.composition.elements}
    missing = {"W", "O"} - elements
    if missing:
        raise HostStructureError(
            f"{name} has no {' and no '.join(sorted(missing))} (composition "
            f"{structure.composition.formula}); a WO3-like host needs W and O"
        )
    if not structure.is_ordered:
        raise HostStructureError(
            f"{name} is disordered (partial occupancies); give an ordered cell"
        )
    w_indices = [i for i, site in enumerate(structure) if site.specie.symbol == "W"]
    bad = []
    for i in w_indices:
        neighbours = structure.get_neighbors(structure[i], W_O_BOND_MAX)
        n_o = sum(1 for n in neighbours if n.specie.symbol == "O")
        if n_o != 6:
            bad.append((i, n_o))
    if bad:
        shown = ", ".join(f"W{i} has {n} O" for i, n in bad[:4])
        raise HostStructureError(
            f"{name} is not WO3-like: every W must have 6 O within {W_O_BOND_MAX} Å "
            f"(octahedral), but {shown}{' …' if len(bad) > 4 else ''}"
        )


def _as_matrix(scaling: int | Sequence[int] | Sequence[Sequence[int]]) -> np.ndarray:
    arr = np.array(scaling)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.allclose(arr, np.round(arr)):
            arr = np.round(arr).astype(int)
        else:
            raise InputError(f"supercell {scaling!r} must be integers")
    if arr.ndim == 0:
        if int(arr) <= 0:
            raise InputError(f"supercell {scaling!r} must be a positive integer")
        arr = np.diag([int(arr)] * 3)
    elif arr.shape == (3,):
        if np.any(arr <= 0):
            raise InputError(
                f"supercell {list(scaling)} must be three positive integers, e.g. 2 2 2"
            )
        arr = np.diag(arr)
    elif arr.shape != (3, 3):
        raise InputError(
            f"supercell {scaling!r} must be one integer, three integers or a 3x3 integer matrix"
        )
    det = round(float(np.linalg.det(arr)))
    if det <= 0:
        raise InputError(
            f"supercell {scaling!r} must have a positive determinant (got {det}); "
            "use positive multiples such as 2 2 2"
        )
    return arr


def make_supercell(
    structure: Structure, scaling: int | Sequence[int] | Sequence[Sequence[int]] = (2, 2, 2)
) -> Structure:
    """A supercell of ``structure`` by an integer scaling (one int, three ints or a 3x3 matrix).

    The default 2x2x2 of γ-WO3 is the paper's 256-atom W64 O192 cell.  Sites stay grouped by
    element in the input order; ``properties["provenance"]`` is kept and the matrix recorded.
    """
    matrix = _as_matrix(scaling)
    supercell = structure.copy()
    supercell.make_supercell(matrix)
    supercell = supercell.get_sorted_structure(key=_element_order_key(structure))
    supercell.properties = dict(structure.properties)
    supercell.properties["supercell_matrix"] = matrix.tolist()
    return supercell


def _element_order_key(structure: Structure):
    order = {}
    for site in structure:
        order.setdefault(site.specie.symbol, len(order))
    return lambda site: order.get(site.specie.symbol, len(order))
