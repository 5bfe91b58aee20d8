"""The energy landscape (issue 15, item 4): configuration, spin, ISPIN, O2 spin state,
geometry, functional and ENCUT each move the energy, by the documented scenario terms."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from polaronflow.emulator import run_emulator
from polaronflow.emulator.energy import configuration_energy, rank_configurations
from polaronflow.emulator.inputs import read_job
from polaronflow.emulator.jobs import reo3_cell, scan_u_incar, write_job
from polaronflow.emulator.scenario import load_scenario
from polaronflow.errors import InputError

SCEN = load_scenario("paper_like")
MG = SCEN.dopants["Mg"]
COUNTS = {"W": 27, "O": 81, "Mg": 1}


def _energy(folder: Path) -> float:
    from pymatgen.io.vasp import Vasprun

    return Vasprun(folder / "vasprun.xml", parse_potcar_file=False, parse_dos=False).final_energy


def _doped(folder: Path, seeds: dict[int, float], structure=None, **incar) -> Path:
    structure = structure or reo3_cell(3, dopant="Mg")
    magmom = [0.0] * len(structure)
    for site, value in seeds.items():
        magmom[site] = value
    settings = {"MAGMOM": magmom, "NSW": 0, "IBRION": -1, "LORBIT": 0, "NEDOS": 301, **incar}
    write_job(folder, structure, scan_u_incar(COUNTS, u=5.0, **settings))
    run_emulator(folder)
    return folder


def test_energy_depends_on_which_w_carry_the_polarons(tmp_path: Path) -> None:
    configs = {"near": {0: 1.0, 13: 1.0}, "far": {13: 1.0, 26: 1.0}, "pair": {0: 1.0, 1: 1.0}}
    # relaxed energies: the geometry term is zero at the end of each relaxation
    energies = {
        k: _energy(_doped(tmp_path / k, seeds, NSW=20, IBRION=2)) for k, seeds in configs.items()
    }
    job = read_job(tmp_path / "near")
    conf = {
        k: configuration_energy(job, SCEN, sorted(seeds), [1.0, 1.0])
        for k, seeds in configs.items()
    }
    assert len({round(e, 4) for e in energies.values()}) == 3
    for k in configs:
        # total energies differ by exactly the configuration energies
        assert energies[k] - energies["near"] == pytest.approx(conf[k] - conf["near"], abs=1e-5)
    # both polarons next to the dopant (and apart) is lower than one of them far from it
    assert energies["near"] < min(energies["far"], energies["pair"])


def test_the_ground_state_from_rank_configurations_is_the_lowest_emulated(tmp_path: Path) -> None:
    structure = reo3_cell(2, dopant="Mg")
    counts = {"W": 8, "O": 24, "Mg": 1}
    write_job(tmp_path / "probe", structure, scan_u_incar(counts, u=5.0, NSW=0))
    ranked = rank_configurations(read_job(tmp_path / "probe"), SCEN, limit=200)
    assert ranked[0][1]  # polarons beat the delocalised state at U = 5
    energies = {}
    for e_conf, sites, signs in (ranked[0], ranked[3], ranked[-1]):
        magmom = [0.0] * len(structure)
        for site, sign in zip(sites, signs, strict=True):
            magmom[site] = sign
        folder = tmp_path / ("-".join(map(str, sites)) or "deloc") / str(len(energies))
        incar = scan_u_incar(counts, u=5.0, NSW=20, IBRION=2, LORBIT=0, MAGMOM=magmom)
        write_job(folder, structure, incar)
        run_emulator(folder)
        energies[e_conf] = _energy(folder)
    order = sorted(energies)
    assert [energies[e] for e in order] == sorted(energies.values())
    assert energies[order[-1]] - energies[order[0]] == pytest.approx(order[-1] - order[0], abs=1e-5)


def test_spin_arrangement_and_nupdown(tmp_path: Path) -> None:
    parallel = _energy(_doped(tmp_path / "p", {0: 1.0, 18: 1.0}, NUPDOWN=2))
    anti = _energy(_doped(tmp_path / "a", {0: 1.0, 18: -1.0}, NUPDOWN=0))
    job = read_job(tmp_path / "p")
    d = job.frac_coords[0] - job.frac_coords[18]
    r = float(np.linalg.norm((d - np.round(d)) @ job.lattice))
    expected = 2 * MG.pair_exchange * math.exp(-r / MG.pair_length)
    assert parallel - anti == pytest.approx(expected, abs=1e-5)
    assert parallel != anti


def test_ispin_1_leaves_the_electrons_delocalised_and_costs_energy(tmp_path: Path) -> None:
    polarised = _energy(_doped(tmp_path / "2", {0: 1.0, 18: 1.0}))
    flat = _energy(_doped(tmp_path / "1", {0: 1.0, 18: 1.0}, ISPIN=1))
    assert flat > polarised + 0.1


def _o2(folder: Path, **incar) -> float:
    s = Structure(
        Lattice.orthorhombic(12.0, 12.5, 13.0),
        ["O", "O"],
        [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5 + 1.21 / 13.0]],
    )
    write_job(folder, s, {"NSW": 0, "LORBIT": 0, "NEDOS": 301, **incar})
    run_emulator(folder)
    return _energy(folder)


def test_o2_singlet_lies_above_the_triplet(tmp_path: Path) -> None:
    triplet = _o2(tmp_path / "t", ISPIN=2, NUPDOWN=2, MAGMOM=[1.0, 1.0])
    free = _o2(tmp_path / "f", ISPIN=2, MAGMOM=[1.0, 1.0])
    singlet = _o2(tmp_path / "s", ISPIN=1)
    forced = _o2(tmp_path / "z", ISPIN=2, NUPDOWN=0, MAGMOM=[1.0, 1.0])
    o2 = SCEN.references["O2"]
    assert free == pytest.approx(triplet, abs=1e-6)
    assert singlet - triplet == pytest.approx(2 * o2.moment_energy, abs=1e-4)
    assert forced - triplet == pytest.approx(2 * o2.moment_energy, abs=1e-4)


def test_a_rattled_cell_is_higher_and_relaxes_back(tmp_path: Path) -> None:
    incar = scan_u_incar({"W": 8, "O": 24}, NSW=0, LORBIT=0, MAGMOM=[0.0] * 32)
    write_job(tmp_path / "ideal", reo3_cell(2, dopant=None), incar)
    write_job(tmp_path / "rattled", reo3_cell(2, dopant=None, jitter=0.03), incar)
    for name in ("ideal", "rattled"):
        run_emulator(tmp_path / name)
    ideal, rattled = _energy(tmp_path / "ideal"), _energy(tmp_path / "rattled")
    job = read_job(tmp_path / "rattled")
    d = job.frac_coords - read_job(tmp_path / "ideal").frac_coords
    u2 = float(np.sum(((d - np.round(d)) @ job.lattice) ** 2))
    # harmonic in the symmetry-breaking part of the rattle (most of it)
    assert 0.5 < (rattled - ideal) / (0.5 * SCEN.energy.harmonic_k * u2) < 1.2
    assert rattled - ideal > 0.01
    # a relaxation ends at the symmetric positions and the relaxed energy
    relax = scan_u_incar({"W": 8, "O": 24}, NSW=20, IBRION=2, LORBIT=0, MAGMOM=[0.0] * 32)
    write_job(tmp_path / "relax", reo3_cell(2, dopant=None, jitter=0.03), relax)
    run_emulator(tmp_path / "relax")
    assert _energy(tmp_path / "relax") == pytest.approx(ideal, abs=1e-5)


def test_relaxing_a_relaxed_polaron_cell_changes_nothing(tmp_path: Path) -> None:
    from pymatgen.io.vasp import Poscar

    # W 0 and 13 share no O: twelve stretched bonds
    first = _doped(tmp_path / "1", {0: 1.0, 13: 1.0}, NSW=20, IBRION=2)
    contcar = Poscar.from_file(first / "CONTCAR").structure
    static = _doped(tmp_path / "2", {0: 1.0, 13: 1.0}, structure=contcar)
    assert _energy(static) == pytest.approx(_energy(first), abs=1e-5)
    again = _doped(tmp_path / "3", {0: 1.0, 13: 1.0}, structure=contcar, NSW=20, IBRION=2)
    moved = Poscar.from_file(again / "CONTCAR").structure
    assert np.abs(moved.cart_coords - contcar.cart_coords).max() < 1e-6  # no second stretch
    # the unrelaxed input lies above by the O stretch around two polarons
    unrelaxed = _energy(_doped(tmp_path / "0", {0: 1.0, 13: 1.0}))
    expected = 0.5 * SCEN.energy.harmonic_k * 12 * MG.bond_stretch**2
    assert unrelaxed - _energy(first) == pytest.approx(expected, rel=0.1)


def test_functional_and_encut(tmp_path: Path) -> None:
    incar = scan_u_incar({"W": 8, "O": 24}, NSW=0, LORBIT=0, MAGMOM=[0.0] * 32)
    cell = reo3_cell(2, dopant=None)
    runs = {
        "scan500": incar,
        "scan700": {**incar, "ENCUT": 700},
        "pbe": {k: v for k, v in incar.items() if k != "METAGGA"} | {"GGA": "PE"},
        "r2scan": {**incar, "METAGGA": "R2scan"},
    }
    energies = {}
    for name, tags in runs.items():
        write_job(tmp_path / name, cell, tags)
        run_emulator(tmp_path / name)
        energies[name] = _energy(tmp_path / name)
    enc = SCEN.energy.encut
    basis = 32 * enc.amplitude * (math.exp(-500 / enc.decay) - math.exp(-700 / enc.decay))
    assert energies["scan500"] - energies["scan700"] == pytest.approx(basis, abs=1e-5)
    shift = SCEN.energy.functional_shift
    assert energies["pbe"] - energies["scan500"] == pytest.approx(32 * shift["PBE"], abs=1e-5)
    assert energies["r2scan"] - energies["scan500"] == pytest.approx(32 * shift["R2SCAN"], abs=1e-5)
    write_job(tmp_path / "lda", cell, {**runs["pbe"], "GGA": "CA"})
    with pytest.raises(InputError, match="functional 'CA'"):
        run_emulator(tmp_path / "lda")


def test_configuration_energy_of_a_structure_equals_the_jobs(tmp_path: Path) -> None:
    from pymatgen.io.vasp import Poscar

    folder = _doped(tmp_path, {0: 1.0, 13: -1.0})
    job = read_job(folder)
    structure = Poscar.from_file(folder / "POSCAR").structure
    from_job = configuration_energy(job, SCEN, [0, 13], [1.0, -1.0])
    assert configuration_energy(structure, SCEN, [0, 13], [1.0, -1.0], u=5.0) == from_job
    with pytest.raises(InputError, match="needs the U"):
        configuration_energy(structure, SCEN, [0, 13], [1.0, -1.0])
