"""Emulated SCAN+U statics for the analysis tests (synthetic: written by the mock-VASP)."""

from __future__ import annotations

from pathlib import Path

#: POTCAR of each element in the emulated runs
POTCARS = {"W": "W_sv", "O": "O", "Mg": "Mg_pv", "H": "H"}


def emulate_static(structure, d: Path, u: float = 5.0) -> Path:
    """A LORBIT 11, ISPIN 2 SCAN+U static (U on W d) of ``structure`` in ``d``, run by the
    emulator; MAGMOM from the structure's ``magmom`` (zero without)."""
    from polaronflow.emulator.core import run_emulator
    from polaronflow.emulator.jobs import write_job

    types = list(dict.fromkeys(site.specie.symbol for site in structure))
    magmom = structure.site_properties.get("magmom") or [0.0] * len(structure)
    incar = {
        "ISPIN": 2,
        "LORBIT": 11,
        "NEDOS": 401,
        "NBANDS": 1100,
        "ISMEAR": 0,
        "SIGMA": 0.05,
        "METAGGA": "Scan",
        "LASPH": True,
        "LDAU": True,
        "LDAUTYPE": 2,
        "LDAUL": [2 if t == "W" else -1 for t in types],
        "LDAUU": [u if t == "W" else 0.0 for t in types],
        "LDAUJ": [0.0] * len(types),
        "LMAXMIX": 4,
        "MAGMOM": magmom,
        "NSW": 0,
        "IBRION": -1,
        "LWAVE": False,
        "LCHARG": False,
        "NELM": 100,
        "ALGO": "All",
        "EDIFF": 1e-5,
    }
    write_job(d, structure, incar, potcar_symbols=[POTCARS[t] for t in types])
    run_emulator(d)
    return d
