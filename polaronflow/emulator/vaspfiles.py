"""Minimal readers for INCAR, POSCAR and KPOINTS, for the emulator command's start-up time.

pymatgen reads these files perfectly well, but importing ``pymatgen.io.vasp`` takes ~1.5 s
(it pulls in the output parsers, scipy, ...), and custodian starts the emulator command once
per job: over a campaign of dozens of jobs that start-up dominated the demo's run time. These
readers cover what VASP itself accepts for the tags and layouts the emulator uses;
``tests/emulator/test_inputs.py`` checks them against pymatgen's parsers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from polaronflow.errors import InputError

#: Tags whose values are real numbers even when written without a decimal point.
FLOAT_TAGS = {
    "ENCUT",
    "ENAUG",
    "EDIFF",
    "EDIFFG",
    "SIGMA",
    "POTIM",
    "NELECT",
    "NUPDOWN",
    "EMIN",
    "EMAX",
    "AMIX",
    "BMIX",
    "AMIX_MAG",
    "BMIX_MAG",
    "AMIN",
    "KSPACING",
    "TIME",
    "HFSCREEN",
    "AEXX",
    "PSTRESS",
    "TEBEG",
    "TEEND",
    "SMASS",
    "ENINI",
    "EFERMI",
    "SYMPREC",
    "ZVAL",
    "WEIMIN",
}
#: Tags holding one real number per site or species.
FLOAT_LIST_TAGS = {"MAGMOM", "LDAUU", "LDAUJ", "RWIGS", "SAXIS", "DIPOL"}
#: Tags holding integers per species.
INT_LIST_TAGS = {"LDAUL"}
_LOGICAL = re.compile(r"^\.?(T|F|TRUE|FALSE)\.?$", re.IGNORECASE)


def _scalar(text: str) -> Any:
    if _LOGICAL.match(text):
        return text.strip(".").upper().startswith("T")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _expand(tokens: list[str]) -> list[str]:
    out: list[str] = []
    for tok in tokens:
        if "*" in tok:
            count, value = tok.split("*", 1)
            out.extend([value] * int(count))
        else:
            out.append(tok)
    return out


def read_incar(path: str | Path) -> dict[str, Any]:
    """INCAR tags with VASP-like typing (see the module docstring)."""
    incar: dict[str, Any] = {}
    for raw in Path(path).read_text().splitlines():
        line = re.split(r"[#!]", raw, maxsplit=1)[0]
        for statement in line.split(";"):
            if "=" not in statement:
                continue
            key, value = (s.strip() for s in statement.split("=", 1))
            key = key.upper()
            if not key or not value:
                continue
            tokens = value.split()
            try:
                if key in FLOAT_LIST_TAGS:
                    incar[key] = [float(t) for t in _expand(tokens)]
                elif key in INT_LIST_TAGS:
                    incar[key] = [int(float(t)) for t in _expand(tokens)]
                elif key in FLOAT_TAGS:
                    incar[key] = float(tokens[0])
                elif len(tokens) > 1 and all(re.match(r"^[-+.\d*Ee]+$", t) for t in tokens):
                    incar[key] = [_scalar(t) for t in _expand(tokens)]
                else:
                    incar[key] = _scalar(value if len(tokens) > 1 else tokens[0])
            except ValueError as exc:
                raise InputError(f"{path}: cannot read {key} = {value!r} ({exc})") from exc
    return incar


def read_poscar(
    path: str | Path, species_fallback: list[str] | None = None
) -> tuple[np.ndarray, list[str], np.ndarray, list | None, str]:
    """(lattice rows Å, element per site, fractional coords, selective flags, comment)."""
    lines = [ln.rstrip() for ln in Path(path).read_text().splitlines()]
    try:
        comment = lines[0]
        scale = [float(x) for x in lines[1].split()]
        lattice = np.array([[float(x) for x in lines[i].split()[:3]] for i in (2, 3, 4)])
        pos = 5
        first = lines[pos].split()
        if all(t.isdigit() for t in first):
            if not species_fallback:
                raise InputError(f"{path}: no species line and no POTCAR symbols to name sites")
            names = [s.split("_")[0] for s in species_fallback]
        else:
            names = [t.split("/")[0].split("_")[0] for t in first]
            pos += 1
        counts = [int(t) for t in lines[pos].split()]
        pos += 1
        selective = lines[pos].strip()[:1].lower() == "s"
        if selective:
            pos += 1
        cartesian = lines[pos].strip()[:1].lower() in ("c", "k")
        pos += 1
        natoms = sum(counts)
        rows = [lines[pos + i].split() for i in range(natoms)]
    except (IndexError, ValueError) as exc:
        raise InputError(f"{path}: not a readable POSCAR ({exc})") from exc
    if len(scale) == 3:
        lattice = lattice * np.asarray(scale)[None, :]
    elif scale[0] < 0:
        lattice = lattice * (abs(scale[0]) / abs(np.linalg.det(lattice))) ** (1 / 3)
    else:
        lattice = lattice * scale[0]
    coords = np.array([[float(x) for x in r[:3]] for r in rows])
    if cartesian:
        factor = scale[0] if len(scale) == 1 and scale[0] > 0 else 1.0
        coords = (coords * factor) @ np.linalg.inv(lattice)
    species = [el for el, n in zip(names, counts, strict=True) for _ in range(n)]
    flags = [[t.upper().startswith("T") for t in r[3:6]] for r in rows] if selective else None
    return lattice, species, coords, flags, comment


def read_kpoints(path: str | Path) -> dict[str, Any]:
    """KPOINTS as {"style": "Gamma"|"Monkhorst"|"Automatic"|"Explicit", ...}."""
    lines = [ln.strip() for ln in Path(path).read_text().splitlines()]
    try:
        n = int(lines[1].split()[0])
        style = lines[2][:1].lower()
        if n == 0 and style in ("g", "m"):
            divs = tuple(int(x) for x in lines[3].split()[:3])
            shift = (
                [float(x) for x in lines[4].split()[:3]]
                if len(lines) > 4 and lines[4]
                else [0.0, 0.0, 0.0]
            )
            return {
                "style": "Gamma" if style == "g" else "Monkhorst",
                "divisions": divs,
                "shift": shift,
            }
        if n == 0 and style == "a":
            return {"style": "Automatic", "length": float(lines[3].split()[0])}
        if n > 0 and style in ("r", "c", "k"):
            if style != "r":
                raise InputError(f"{path}: Cartesian explicit k-points are not supported")
            pts = np.array([[float(x) for x in lines[3 + i].split()[:4]] for i in range(n)])
            return {"style": "Explicit", "kpoints": pts[:, :3], "weights": pts[:, 3]}
    except (IndexError, ValueError) as exc:
        raise InputError(f"{path}: not a readable KPOINTS ({exc})") from exc
    raise InputError(f"{path}: KPOINTS style {lines[2]!r} is not supported by the emulator")
