"""Regenerate the hand-edited copies of real VASP files in this folder (see README.md).

Run from the repository root: ``python tests/data/edited/make_edited.py``.  Each case is a
real file of ``tests/data/vasp-corpus`` with one small, documented edit.
"""

from __future__ import annotations

import gzip
from pathlib import Path

HERE = Path(__file__).parent
CORPUS = HERE.parent / "vasp-corpus"


def _read(rel: str) -> list[str]:
    return gzip.open(CORPUS / rel, "rt", encoding="latin-1").read().splitlines(keepends=True)


def _write(case: str, name: str, lines: list[str]) -> None:
    (HERE / case).mkdir(exist_ok=True)
    # mtime=0: the same bytes every time the script runs
    with open(HERE / case / name, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        gz.write("".join(lines).encode("latin-1"))


def _last(lines: list[str], needle: str, before: int | None = None) -> int:
    stop = len(lines) if before is None else before
    return max(i for i in range(stop) if needle in lines[i])


def main() -> None:
    feo = _read("FeO_U_relax_custodian/OUTCAR.gz")

    # 1. the final free energy overflowed (VASP prints stars when a number exceeds its field)
    lines = list(feo)
    i = _last(lines, "free  energy   TOTEN")
    lines[i] = "  free  energy   TOTEN  =  ************** eV\n"
    _write("FeO_outcar_stars_energy", "OUTCAR.gz", lines)

    # 2. a NaN site moment (ion 1) in the last magnetization table
    lines = list(feo)
    t = _last(lines, " magnetization (x)")
    row = next(k for k in range(t, t + 10) if lines[k].split()[:1] == ["1"])
    lines[row] = lines[row].replace("3.007", "  NaN")
    _write("FeO_outcar_nan_moment", "OUTCAR.gz", lines)

    # 3. overflow stars in ion 1's d and total columns of the last magnetization table
    lines = list(feo)
    lines[row] = lines[row].replace("3.020   3.007", "*******  *****")
    _write("FeO_outcar_stars_moment", "OUTCAR.gz", lines)

    # 4. the file cut inside the magnetization table of the last ionic step (28): only the
    #    moment rows of ions 1-2 are there
    t_prev = _last(lines, " magnetization (x)", before=_last(feo, "free  energy   TOTEN"))
    row = next(k for k in range(t_prev, t_prev + 10) if feo[k].split()[:1] == ["2"])
    _write("FeO_outcar_cut_in_moments", "OUTCAR.gz", list(feo[: row + 1]))

    # 5. an HSE06 run as an OUTCAR shows it: LHFCALC = T, AEXX = 0.25, HFSCREEN = 0.2
    lines = list(feo)
    k = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("LHFCALC ="))
    lines[k] = lines[k].replace("LHFCALC =     F", "LHFCALC =     T")
    a = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("AEXX    ="))
    lines[a] = lines[a].replace("0.0000", "0.2500")
    lines.insert(a + 1, "   HFSCREEN=    0.2000    screening length (either q_TF or 0.3 A-1)\n")
    _write("FeO_outcar_hse06", "OUTCAR.gz", lines)

    # 6. a vasprun.xml whose final e_fr_energy overflowed
    mgo = _read("MgO_bulk_prim/vasprun.xml.gz")
    i = _last(mgo, '<i name="e_fr_energy">')
    indent = mgo[i][: mgo[i].index("<")]
    mgo[i] = f'{indent}<i name="e_fr_energy"> ************** </i>\n'
    _write("MgO_vasprun_stars_energy", "vasprun.xml.gz", mgo)


if __name__ == "__main__":
    main()
