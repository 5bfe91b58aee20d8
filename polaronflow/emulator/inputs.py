"""Read a VASP job folder (INCAR, KPOINTS, POSCAR, POTCAR or POTCAR.spec) for the emulator."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from polaronflow.errors import InputError

#: Valence electrons (ZVAL) and TITEL date of the PBE_54 PAW potentials the project uses.
#: A table, not a POTCAR reader: real POTCARs are licensed and absent in tests. When a real
#: POTCAR is present its ZVAL lines are read instead.
POTCAR_TABLE: dict[str, tuple[float, str]] = {
    "W_sv": (14.0, "04Sep2015"),
    "W": (6.0, "08Apr2002"),
    "O": (6.0, "08Apr2002"),
    "O_s": (6.0, "07Sep2000"),
    "Mg_pv": (8.0, "13Apr2007"),
    "Mg": (2.0, "13Apr2007"),
    "H": (1.0, "15Jun2001"),
    "Li_sv": (3.0, "10Sep2004"),
    "Li": (1.0, "17Jan2003"),
    "Na_pv": (7.0, "19Sep2006"),
    "K_sv": (9.0, "06Sep2000"),
    "Ca_sv": (10.0, "06Sep2000"),
    "Zn": (12.0, "06Sep2000"),
    "Al": (3.0, "04Jan2001"),
}


@dataclass
class JobInputs:
    """What the emulator needs from a job folder."""

    directory: Path
    incar: dict[str, Any]
    #: element per site, in POSCAR order.
    species: list[str]
    lattice: np.ndarray
    frac_coords: np.ndarray
    #: POTCAR symbols per species block (e.g. ["W_sv", "O", "Mg_pv"]).
    potcar_symbols: list[str]
    #: element per species block and number of atoms per block.
    block_elements: list[str]
    block_counts: list[int]
    zvals: list[float]
    #: k-mesh generation: style ("Gamma"/"Monkhorst-Pack"/"Explicit"), divisions, shift.
    kpoint_style: str = "Gamma"
    divisions: tuple[int, int, int] = (1, 1, 1)
    kpoints: np.ndarray = field(default_factory=lambda: np.zeros((1, 3)))
    kweights: np.ndarray = field(default_factory=lambda: np.ones(1))
    poscar_comment: str = ""
    selective_dynamics: list | None = None

    @property
    def natoms(self) -> int:
        return len(self.species)

    @property
    def nelect(self) -> float:
        if "NELECT" in self.incar:
            return float(self.incar["NELECT"])
        return float(sum(z * n for z, n in zip(self.zvals, self.block_counts, strict=True)))

    def get(self, key: str, default: Any = None) -> Any:
        return self.incar.get(key, default)

    @property
    def ispin(self) -> int:
        return int(self.incar.get("ISPIN", 1))

    @property
    def u_on_w(self) -> float:
        """The Hubbard U on the W d shell read from LDAUU (0 without LDAU or W)."""
        if not _truthy(self.incar.get("LDAU", False)) or "W" not in self.block_elements:
            return 0.0
        values = self.incar.get("LDAUU") or []
        idx = self.block_elements.index("W")
        return float(values[idx]) if idx < len(values) else 0.0

    @property
    def magmom(self) -> np.ndarray:
        """Initial moments per site (VASP default 1.0 each for ISPIN=2)."""
        raw = self.incar.get("MAGMOM")
        if raw is None:
            return np.ones(self.natoms)
        arr = np.asarray(raw, dtype=float).ravel()
        if arr.size != self.natoms:
            raise InputError(
                f"INCAR MAGMOM in {self.directory} has {arr.size} values for {self.natoms} "
                "atoms (give one value per site)"
            )
        return arr


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().strip(".").upper().startswith("T")
    return bool(value)


def _read_potcar_symbols(directory: Path) -> tuple[list[str], list[float] | None]:
    spec = directory / "POTCAR.spec"
    potcar = directory / "POTCAR"
    if potcar.is_file():
        symbols, zvals = [], []
        for line in potcar.read_text(errors="replace").splitlines():
            stripped = line.strip()
            if stripped.startswith("TITEL"):
                symbols.append(stripped.split("=", 1)[1].split()[1])
            elif "ZVAL" in stripped and "=" in stripped and "POMASS" in stripped:
                zvals.append(float(stripped.split("ZVAL")[1].split("=")[1].split()[0]))
        if symbols:
            return symbols, zvals if len(zvals) == len(symbols) else None
    if spec.is_file():
        return [s.strip() for s in spec.read_text().splitlines() if s.strip()], None
    raise InputError(f"no POTCAR or POTCAR.spec in {directory}: the emulator needs one of them")


def _kpoints(directory: Path, lattice: np.ndarray, incar: dict) -> tuple:
    """(style, divisions, kpoints (frac), weights) with time-reversal reduction."""
    from polaronflow.emulator.vaspfiles import read_kpoints

    path = directory / "KPOINTS"
    if path.is_file():
        kp = read_kpoints(path)
        style = kp["style"]
        if style in ("Gamma", "Monkhorst"):
            divs = tuple(kp["divisions"])
            shift = np.asarray(kp["shift"], dtype=float)
            style = "Gamma" if style == "Gamma" else "Monkhorst-Pack"
        elif style == "Automatic":
            rec = np.linalg.norm(np.linalg.inv(lattice).T, axis=1)
            divs = tuple(max(1, math.floor(kp["length"] * r + 0.5)) for r in rec)
            shift = np.zeros(3)
            style = "Gamma"
        else:
            weights = np.asarray(kp["weights"], dtype=float)
            return "Explicit", (0, 0, 0), kp["kpoints"], weights / weights.sum()
    else:
        spacing = float(incar.get("KSPACING", 0.5))
        rec = np.linalg.norm(np.linalg.inv(lattice).T, axis=1) * 2 * math.pi
        divs = tuple(max(1, math.ceil(r / spacing)) for r in rec)
        shift = np.zeros(3)
        style = "Gamma"
    if style == "Monkhorst-Pack":
        shift = shift + np.array([0.5 if d % 2 == 0 else 0.0 for d in divs])
    div = np.asarray(divs)
    grid = np.stack(np.meshgrid(*[np.arange(d) for d in divs], indexing="ij"), -1).reshape(-1, 3)
    # Work in integers (units of 1/(2 n_i)) so that k ~ -k (time reversal) is exact.
    q = (2 * grid + np.round(2 * shift).astype(int)) % (2 * div)
    neg = (-q) % (2 * div)
    key = np.minimum(_lex(q, 2 * div), _lex(neg, 2 * div))
    _, first, counts = np.unique(key, return_index=True, return_counts=True)
    order = np.argsort(first)
    pts = q[first[order]] / (2.0 * div)
    pts = pts - np.round(pts)
    pts[np.isclose(pts, -0.5)] = 0.5
    weights = counts[order].astype(float)
    return style, divs, pts, weights / weights.sum()


def _lex(q: np.ndarray, base: np.ndarray) -> np.ndarray:
    return (q[:, 0] * base[1] + q[:, 1]) * base[2] + q[:, 2]


def read_job(directory: str | Path) -> JobInputs:
    """Read the inputs of one VASP job folder.

    Parameters
    ----------
    directory
        Folder holding INCAR, POSCAR, POTCAR or POTCAR.spec and (optionally) KPOINTS.

    Returns
    -------
    JobInputs
        Parsed inputs.

    Raises
    ------
    InputError
        A required file is missing or inconsistent.
    """
    from polaronflow.emulator.vaspfiles import read_incar, read_poscar

    directory = Path(directory)
    for name in ("INCAR", "POSCAR"):
        if not (directory / name).is_file():
            raise InputError(f"no {name} in {directory}: not a VASP job folder")
    incar = read_incar(directory / "INCAR")
    symbols, zvals = _read_potcar_symbols(directory)
    lattice, species, frac, sd, comment = read_poscar(directory / "POSCAR", symbols)
    blocks_el: list[str] = []
    blocks_n: list[int] = []
    for el in species:
        if blocks_el and blocks_el[-1] == el:
            blocks_n[-1] += 1
        else:
            blocks_el.append(el)
            blocks_n.append(1)
    if len(symbols) != len(blocks_el):
        raise InputError(
            f"{directory}: {len(symbols)} POTCAR entries ({' '.join(symbols)}) for "
            f"{len(blocks_el)} species blocks in POSCAR ({' '.join(blocks_el)})"
        )
    for sym, el in zip(symbols, blocks_el, strict=True):
        if sym.split("_")[0] != el:
            raise InputError(f"{directory}: POTCAR {sym!r} does not match POSCAR species {el!r}")
    if zvals is None:
        missing = [s for s in symbols if s not in POTCAR_TABLE]
        if missing:
            raise InputError(
                f"{directory}: no ZVAL known for POTCAR {', '.join(missing)}; known: "
                f"{', '.join(sorted(POTCAR_TABLE))} (or set NELECT in the INCAR)"
            )
        zvals = [POTCAR_TABLE[s][0] for s in symbols]
    style, divs, kpts, kw = _kpoints(directory, lattice, incar)
    return JobInputs(
        directory=directory,
        incar=incar,
        species=species,
        lattice=lattice,
        frac_coords=np.asarray(frac, dtype=float),
        potcar_symbols=symbols,
        block_elements=blocks_el,
        block_counts=blocks_n,
        zvals=list(zvals),
        kpoint_style=style,
        divisions=tuple(divs),
        kpoints=kpts,
        kweights=kw,
        poscar_comment=comment,
        selective_dynamics=sd,
    )
