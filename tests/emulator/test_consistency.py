"""Internal consistency VASP's files have (issue 15, item 6): energy terms add up, the CHGCAR
spin integrates to the total moment, F/E/E0 obey the smearing relations, energies not round."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polaronflow.emulator import run_emulator
from polaronflow.emulator.jobs import reo3_cell, scan_u_incar, write_job

TERMS = ("alphaZ", "ewald", "hartreedc", "XCdc", "pawpsdc", "pawaedc", "eentropy", "bandstr")


def _run(folder: Path, u: float = 5.0, **incar) -> Path:
    magmom = [0.0] * 33
    magmom[2] = magmom[5] = 1.0
    settings = {"MAGMOM": magmom, "NSW": 3, "IBRION": 2, "NEDOS": 301, **incar}
    write_job(
        folder, reo3_cell(2, dopant="Mg"), scan_u_incar({"W": 8, "O": 24, "Mg": 1}, u=u, **settings)
    )
    run_emulator(folder)
    return folder


@pytest.mark.parametrize("u", [5.0, 2.0])  # localised insulator; delocalised metal
def test_scstep_terms_sum_to_the_free_energy(tmp_path: Path, u: float) -> None:
    import xml.etree.ElementTree as ET

    root = ET.parse(_run(tmp_path, u=u) / "vasprun.xml").getroot()
    checked = 0
    for energy in root.iter("energy"):
        values = {i.get("name"): float(i.text) for i in energy.findall("i")}
        if "bandstr" not in values:
            continue
        total = sum(values[n] for n in TERMS) + values["atom"]
        assert total == pytest.approx(values["e_fr_energy"], abs=2e-8)
        # Gaussian smearing: E(sigma->0) halfway between F and E
        assert values["e_0_energy"] == pytest.approx(
            0.5 * (values["e_fr_energy"] + values["e_wo_entrp"]), abs=2e-8
        )
        checked += 1
    assert checked >= 2


def test_a_metal_has_entropy_an_insulator_none(tmp_path: Path) -> None:
    from pymatgen.io.vasp import Oszicar, Vasprun

    ent = {}
    for u in (5.0, 2.0):
        folder = _run(tmp_path / str(u), u=u)
        vr = Vasprun(folder / "vasprun.xml", parse_potcar_file=False, parse_dos=False)
        step = vr.ionic_steps[-1]
        ent[u] = step["e_fr_energy"] - step["e_wo_entrp"]
        osz = Oszicar(folder / "OSZICAR").ionic_steps[-1]
        assert osz["F"] == pytest.approx(step["e_fr_energy"], abs=1e-5)  # 8 digits
        assert osz["E0"] == pytest.approx(step["e_0_energy"], abs=1e-5)
    # the 0.25 eV level-to-CBM gap leaves tiny Gaussian tails (SIGMA = 0.05)
    assert abs(ent[5.0]) < 5e-4
    assert ent[2.0] < 10 * ent[5.0] < 0  # delocalised electrons: metallic occupations


def test_chgcar_spin_integrates_to_the_total_moment(tmp_path: Path) -> None:
    from pymatgen.io.vasp import Chgcar, Outcar

    folder = _run(tmp_path, NSW=0, IBRION=-1, LORBIT=11)
    chg = Chgcar.from_file(folder / "CHGCAR")
    total = Outcar(folder / "OUTCAR").total_mag
    # VASP stores rho * volume: the mean over the grid is the integral
    assert chg.data["diff"].mean() == pytest.approx(total, abs=1e-6)
    assert chg.data["total"].mean() == pytest.approx(264.0, abs=1e-6)
    assert abs(total - 2.0) < 1e-3


def test_energies_are_not_round(tmp_path: Path) -> None:
    from pymatgen.io.vasp import Vasprun

    vr = Vasprun(_run(tmp_path) / "vasprun.xml", parse_potcar_file=False, parse_dos=False)
    energies = np.array([s["e_0_energy"] for s in vr.ionic_steps])
    # not on a 0.01 eV grid: configuration, ENCUT and geometry terms are in every one
    assert np.all(np.abs(energies * 100 - np.round(energies * 100)) > 1e-3)
