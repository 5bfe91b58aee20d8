"""Small helpers that write emulator job folders (for tests, examples and benchmarks)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: POTCAR symbol per element used when none is given (pymatgen's SCAN-set choices).
DEFAULT_POTCARS = {
    "W": "W_sv",
    "O": "O",
    "Mg": "Mg_pv",
    "H": "H",
    "Li": "Li_sv",
    "Na": "Na_pv",
    "K": "K_sv",
    "Ca": "Ca_sv",
    "Zn": "Zn",
    "Al": "Al",
}


def reo3_cell(n: int = 2, a: float = 3.76, dopant: str | None = "Mg", jitter: float = 0.0):
    """A ReO3-type W_m O_3m cell (m = n^3) with an optional dopant in the first cube centre.

    Parameters
    ----------
    n
        W atoms along each axis.
    a
        W–W spacing (Å).
    dopant
        Element placed at the centre of the first cube of 8 W (None: pristine).
    jitter
        Random displacement amplitude (Å), to break the cubic symmetry a little.

    Returns
    -------
    pymatgen.core.Structure
        Sites sorted W, O, dopant.
    """
    from pymatgen.core import Lattice, Structure

    species, coords = [], []
    cells = [np.array([i, j, k], dtype=float) for i in range(n) for j in range(n) for k in range(n)]
    for base in cells:
        species.append("W")
        coords.append(base / n)
    for base in cells:
        for shift in np.eye(3) * 0.5:
            species.append("O")
            coords.append((base + shift) / n)
    if dopant:
        species.append(dopant)
        coords.append(np.array([0.5, 0.5, 0.5]) / n)
    structure = Structure(Lattice.cubic(a * n), species, coords)
    if jitter:
        rng = np.random.default_rng(7)
        for i in range(len(structure)):
            structure.translate_sites([i], rng.uniform(-jitter, jitter, 3), frac_coords=False)
    return structure


def write_job(
    dest: str | Path,
    structure,
    incar: dict[str, Any],
    potcar_symbols: Sequence[str] | None = None,
    kpoints: Sequence[int] | None = (1, 1, 1),
) -> Path:
    """Write INCAR, POSCAR, POTCAR.spec and a Gamma-centred KPOINTS (None: no KPOINTS).

    Parameters
    ----------
    dest
        Job folder (created).
    structure
        pymatgen Structure; species blocks follow its site order.
    incar
        INCAR tags.
    potcar_symbols
        One symbol per species block; default from :data:`DEFAULT_POTCARS`.
    kpoints
        Gamma-centred mesh, or None to rely on KSPACING.

    Returns
    -------
    Path
        The job folder.
    """
    from pymatgen.io.vasp import Incar, Kpoints, Poscar

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    poscar = Poscar(structure, comment=structure.composition.formula)
    poscar.write_file(dest / "POSCAR")
    symbols = list(potcar_symbols or [DEFAULT_POTCARS.get(el, el) for el in poscar.site_symbols])
    (dest / "POTCAR.spec").write_text("\n".join(symbols) + "\n")
    Incar(incar).write_file(dest / "INCAR")
    if kpoints is not None:
        Kpoints.gamma_automatic(tuple(kpoints)).write_file(dest / "KPOINTS")
    return dest


def scan_u_incar(
    natoms_by_element: dict[str, int], u: float = 5.0, **overrides: Any
) -> dict[str, Any]:
    """A SCAN+U INCAR like the paper's (U on W d), for species in the given order."""
    elements = list(natoms_by_element)
    incar: dict[str, Any] = {
        "METAGGA": "Scan",
        "LASPH": True,
        "ISPIN": 2,
        "ENCUT": 500,
        "EDIFF": 1e-5,
        "EDIFFG": -0.01,
        "ISMEAR": 0,
        "SIGMA": 0.05,
        "NELM": 100,
        "ALGO": "All",
        "LMAXMIX": 4,
        "LORBIT": 11,
        "LWAVE": True,
        "LCHARG": True,
    }
    if "W" in elements:
        incar.update(
            LDAU=True,
            LDAUTYPE=2,
            LDAUL=[2 if el == "W" else -1 for el in elements],
            LDAUU=[u if el == "W" else 0.0 for el in elements],
            LDAUJ=[0.0 for _ in elements],
        )
    incar.update(overrides)
    return incar
