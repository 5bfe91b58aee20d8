"""Two ways the emulator must behave as VASP does under custodian.

* A metal's smearing entropy vanishes with SIGMA (custodian's LargeSigmaHandler lowers SIGMA
  until the entropy is below 1 meV/atom; with bands pinned at E_F it never would).
* VASP empties OUTCAR, OSZICAR and vasprun.xml as it starts, so a custodian monitor polling
  them during a rerun never reads the previous run's numbers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _mg_job(folder: Path, sigma: float) -> None:
    from pymatgen.io.vasp import Incar, Kpoints, Poscar

    from polaronflow.structures.references import reference_structure

    mg = reference_structure("Mg")
    folder.mkdir(parents=True, exist_ok=True)
    Poscar(mg).write_file(folder / "POSCAR")
    Kpoints.gamma_automatic((4, 4, 3)).write_file(folder / "KPOINTS")
    Incar(
        {"METAGGA": "SCAN", "ENCUT": 500, "ISPIN": 2, "ISMEAR": 1, "SIGMA": sigma, "NSW": 0}
    ).write_file(folder / "INCAR")
    (folder / "POTCAR.spec").write_text("Mg_pv\n")


def _entropy_per_atom(folder: Path) -> float:
    lines = [ln for ln in (folder / "OUTCAR").read_text().splitlines() if "EENTRO" in ln]
    return abs(float(lines[-1].split("=")[-1])) / 2


def test_metal_smearing_entropy_vanishes_with_sigma(tmp_path):
    from polaronflow.emulator import run_emulator

    entropy = {}
    for sigma in (0.2, 0.05, 0.01):
        folder = tmp_path / f"s{sigma}"
        _mg_job(folder, sigma)
        run_emulator(folder)
        entropy[sigma] = _entropy_per_atom(folder)
    assert entropy[0.01] < 1e-3  # what LargeSigmaHandler asks for (1 meV/atom)
    assert entropy[0.01] < entropy[0.2]


def test_outputs_are_emptied_as_the_run_starts(tmp_path):
    _mg_job(tmp_path, 0.2)
    stale = "previous run's OUTCAR\n"
    for name in ("OUTCAR", "OSZICAR", "vasprun.xml"):
        (tmp_path / name).write_text(stale)
    # a run that stops at once (a POTCAR for the wrong element) must still have emptied them
    (tmp_path / "POTCAR.spec").write_text("O\n")
    done = subprocess.run(
        [sys.executable, "-m", "polaronflow.emulator"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "POTCAR" in done.stderr
    for name in ("OUTCAR", "OSZICAR", "vasprun.xml"):
        assert (tmp_path / name).read_text() == "", name
