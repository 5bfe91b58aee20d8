"""The emulator writes the scenario's physics where the inputs say: seeds, U, NUPDOWN, cell."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from polaronflow.emulator import run_emulator
from polaronflow.emulator.jobs import reo3_cell, scan_u_incar, write_job
from polaronflow.emulator.scenario import load_scenario
from polaronflow.errors import InputError

SCEN = load_scenario("paper_like")
MG = SCEN.dopants["Mg"]
# In a 3x3x3 ReO3 cell with Mg at the centre of the first cube, W 0 is a first-shell
# neighbour (3.26 Å) and W 18 a second-shell one (6.24 Å).
SHELL1, SHELL2 = 0, 18


def _moments(folder: Path) -> np.ndarray:
    from pymatgen.io.vasp import Outcar

    return np.array([m["tot"] for m in Outcar(folder / "OUTCAR").magnetization])


def _doped(folder: Path, seeds: dict[int, float], n: int = 3, **incar) -> Path:
    structure = reo3_cell(n, dopant="Mg")
    magmom = [0.0] * len(structure)
    for site, value in seeds.items():
        magmom[site] = value
    counts = {"W": n**3, "O": 3 * n**3, "Mg": 1}
    settings = {"MAGMOM": magmom, "NSW": 0, "IBRION": -1, "NEDOS": 301, **incar}
    write_job(folder, structure, scan_u_incar(counts, **settings))
    run_emulator(folder)
    return folder


def test_moments_sit_on_the_seeds_with_shell_moments(tmp_path: Path) -> None:
    mom = _moments(_doped(tmp_path, {SHELL1: 1.0, SHELL2: 1.0}))
    assert mom[SHELL1] == pytest.approx(MG.moments_by_shell[0], abs=2e-3)
    assert mom[SHELL2] == pytest.approx(MG.moments_by_shell[1], abs=2e-3)
    others = np.delete(mom, [SHELL1, SHELL2])
    assert np.abs(others).max() <= MG.tail_moment + 0.011
    # Tails: four in-plane W neighbours of each polaron carry the small moment.
    w_tails = np.flatnonzero(np.isclose(mom[:27], MG.tail_moment, atol=1e-3))
    assert len(w_tails) == 8


def test_a_wrong_seed_shows_up(tmp_path: Path) -> None:
    mom = _moments(_doped(tmp_path, {4: 1.0, 13: 1.0}))
    assert sorted(np.argsort(mom)[-2:].tolist()) == [4, 13]
    assert abs(mom[SHELL1]) < 0.1


def test_more_seeds_than_electrons_fill_the_strongest(tmp_path: Path) -> None:
    mom = _moments(_doped(tmp_path, {SHELL1: 0.6, SHELL2: 1.0, 9: 0.9}))
    assert sorted(np.argsort(mom)[-2:].tolist()) == [9, SHELL2]


def test_nupdown_sets_the_total_moment(tmp_path: Path) -> None:
    from pymatgen.io.vasp import Outcar

    folder = _doped(tmp_path, {SHELL1: 1.0, SHELL2: 1.0}, NUPDOWN=0)
    mom = _moments(folder)
    assert Outcar(folder / "OUTCAR").total_mag == pytest.approx(0.0)
    assert mom[SHELL1] * mom[SHELL2] < 0


def test_moments_and_level_follow_u(tmp_path: Path) -> None:
    from pymatgen.io.vasp import Vasprun

    folders = {
        u: _doped(tmp_path / str(u), {0: 1.0, 3: 1.0}, n=2, LDAUU=[u, 0.0, 0.0]) for u in (9.0, 5.0)
    }
    m9, m5 = (_moments(folders[u])[SHELL1] for u in (9.0, 5.0))
    assert m9 - m5 == pytest.approx(4 * MG.moment_u_slope, abs=2e-3)
    gaps = {}
    for u, folder in folders.items():
        # SIGMA = 0.05 leaves Gaussian tails (~1e-4) on the CBM, as real VASP does: count a
        # state as occupied above 0.01, not pymatgen's default 1e-8.
        vr = Vasprun(
            folder / "vasprun.xml", parse_potcar_file=False, parse_dos=False, occu_tol=0.01
        )
        gaps[u] = vr.eigenvalue_band_properties[0]
    assert gaps[5.0] == pytest.approx(MG.ingap_depth, abs=2e-3)
    assert gaps[9.0] - gaps[5.0] == pytest.approx(4 * MG.ingap_u_slope, abs=2e-3)


def test_isif3_relaxation_applies_the_lattice_response(tmp_path: Path) -> None:
    from pymatgen.io.vasp import Vasprun

    cells = {}
    for dopant in (None, "Mg"):
        structure = reo3_cell(2, dopant=dopant)
        counts = {"W": 8, "O": 24, **({"Mg": 1} if dopant else {})}
        folder = tmp_path / str(dopant)
        write_job(folder, structure, scan_u_incar(counts, NSW=40, IBRION=2, ISIF=3, LORBIT=0))
        run_emulator(folder)
        vr = Vasprun(folder / "vasprun.xml", parse_potcar_file=False, parse_dos=False)
        cells[dopant] = vr.final_structure.lattice
    host = cells[None]
    a, b, c, beta = SCEN.host.cell_32
    assert host.abc == pytest.approx((a, b, c), abs=1e-6)
    assert host.angles[1] == pytest.approx(beta, abs=1e-6)
    rel = [100 * (x / y - 1) for x, y in zip(cells["Mg"].abc, host.abc, strict=True)]
    change = MG.lattice_change
    assert rel == pytest.approx([change.a, change.b, change.c], abs=1e-6)
    assert 100 * (cells["Mg"].angles[1] / host.angles[1] - 1) == pytest.approx(change.beta)


def _reference(folder: Path, name: str, mesh: int) -> float:
    from pymatgen.io.vasp import Vasprun

    if name == "MgO":
        s = Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
        ).get_primitive_structure()
        incar = {"ISPIN": 1, "NSW": 0}
    elif name == "Mg":
        s = Structure.from_spacegroup(
            "P6_3/mmc", Lattice.hexagonal(3.21, 5.21), ["Mg"], [[1 / 3, 2 / 3, 0.25]]
        )
        incar = {"ISPIN": 1, "NSW": 0, "ISMEAR": 1, "SIGMA": 0.1}
    else:
        s = Structure(
            Lattice.orthorhombic(12.0, 12.5, 13.0),
            ["O", "O"],
            [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5 + 1.21 / 13.0]],
        )
        incar = {"ISPIN": 2, "NUPDOWN": 2, "NSW": 0, "MAGMOM": [1.0, 1.0]}
    write_job(folder, s, {**incar, "LORBIT": 0, "NEDOS": 301}, kpoints=(mesh,) * 3)
    run_emulator(folder)
    vr = Vasprun(folder / "vasprun.xml", parse_potcar_file=False, parse_dos=False)
    return vr.final_energy / len(vr.final_structure), vr


def test_reference_energies_converge_with_the_k_mesh(tmp_path: Path) -> None:
    energies = [_reference(tmp_path / f"k{n}", "MgO", n)[0] for n in (2, 4, 6, 8, 10, 12)]
    steps = np.abs(np.diff(energies))
    assert np.all(np.diff(steps) < 0)
    assert steps[0] > 1e-3  # coarse meshes are visibly off
    assert steps[-1] < 2e-5  # < 0.02 meV/atom between the two densest meshes


def test_reaction_energies_follow_the_scenario(tmp_path: Path) -> None:
    e_mgo, _ = _reference(tmp_path / "mgo", "MgO", 16)
    e_mg, _ = _reference(tmp_path / "mg", "Mg", 24)
    e_o2, vr_o2 = _reference(tmp_path / "o2", "O2", 1)
    assert vr_o2.parameters["NUPDOWN"] == 2
    reaction1 = 2 * e_mgo - e_mg - 0.5 * 2 * e_o2
    refs = SCEN.references
    expected1 = (
        refs["MgO"].energy_per_formula_unit
        - refs["Mg"].energy_per_formula_unit
        - refs["O2"].energy_per_formula_unit / 2
    )
    assert reaction1 == pytest.approx(expected1, abs=2e-3)
    # The paper's value is never what the scenario writes.
    assert abs(reaction1 - (-6.16)) > 0.05


def test_unknown_system_is_an_input_error(tmp_path: Path) -> None:
    s = Structure(Lattice.cubic(4.0), ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    write_job(tmp_path, s, {"NSW": 0}, potcar_symbols=["Zn", "Al"])
    with pytest.raises(InputError):
        run_emulator(tmp_path)
