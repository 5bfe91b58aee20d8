"""The emulator's light INCAR/POSCAR/KPOINTS readers agree with pymatgen's parsers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.vasp import Incar, Kpoints, Poscar

from polaronflow.emulator.inputs import read_job
from polaronflow.emulator.jobs import reo3_cell, scan_u_incar, write_job
from polaronflow.emulator.vaspfiles import read_incar, read_kpoints, read_poscar
from polaronflow.errors import InputError


def test_incar_matches_pymatgen(tmp_path: Path) -> None:
    incar = scan_u_incar(
        {"W": 8, "O": 24, "Mg": 1},
        MAGMOM=[1.0] * 2 + [0.0] * 31,
        NSW=3,
        SYSTEM="a doped cell",
        LREAL="Auto",
        NUPDOWN=2,
    )
    Incar(incar).write_file(tmp_path / "INCAR")
    ours = read_incar(tmp_path / "INCAR")
    theirs = dict(Incar.from_file(tmp_path / "INCAR"))
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        if isinstance(value, float | int) and not isinstance(value, bool):
            assert ours[key] == pytest.approx(value), key
        else:
            assert ours[key] == value, key


def test_incar_syntax_variants(tmp_path: Path) -> None:
    (tmp_path / "INCAR").write_text(
        "ISPIN = 2 ; LORBIT = 11   # two tags on a line\n"
        "MAGMOM = 2*1.0 3*0 ! comment\nLDAU = .TRUE.\nENCUT = 500\nALGO = All\n"
    )
    incar = read_incar(tmp_path / "INCAR")
    assert incar == {
        "ISPIN": 2,
        "LORBIT": 11,
        "MAGMOM": [1.0, 1.0, 0.0, 0.0, 0.0],
        "LDAU": True,
        "ENCUT": 500.0,
        "ALGO": "All",
    }


def test_poscar_matches_pymatgen(tmp_path: Path) -> None:
    s = reo3_cell(2, dopant="Mg", jitter=0.05)
    s.add_site_property("selective_dynamics", [[True, False, True]] * len(s))
    Poscar(s).write_file(tmp_path / "POSCAR")
    lattice, species, frac, flags, _ = read_poscar(tmp_path / "POSCAR")
    ref = Poscar.from_file(tmp_path / "POSCAR").structure
    assert np.allclose(lattice, ref.lattice.matrix)
    assert species == [site.specie.symbol for site in ref]
    assert np.allclose(frac, ref.frac_coords)
    assert flags[0] == [True, False, True]


def test_cartesian_poscar_without_species_line(tmp_path: Path) -> None:
    (tmp_path / "POSCAR").write_text(
        "MgO\n2.0\n1 0 0\n0 1 0\n0 0 1\n1 1\nCartesian\n0 0 0\n1.0 1.0 1.0\n"
    )
    lattice, species, frac, _, _ = read_poscar(tmp_path / "POSCAR", ["Mg_pv", "O"])
    assert np.allclose(lattice, 2 * np.eye(3))
    assert species == ["Mg", "O"]
    # VASP scales Cartesian positions by the scaling factor too.
    assert np.allclose(frac[1], [1.0, 1.0, 1.0])
    (tmp_path / "POSCAR").write_text(
        (tmp_path / "POSCAR").read_text().replace("1 1\n", "Mg O\n1 1\n")
    )
    ref = Poscar.from_file(tmp_path / "POSCAR").structure
    assert np.allclose(ref.cart_coords[1], frac[1] @ lattice)


@pytest.mark.parametrize(
    "kpoints", [Kpoints.gamma_automatic((2, 3, 4)), Kpoints.monkhorst_automatic((4, 4, 2))]
)
def test_kpoints_match_pymatgen(tmp_path: Path, kpoints: Kpoints) -> None:
    kpoints.write_file(tmp_path / "KPOINTS")
    ours = read_kpoints(tmp_path / "KPOINTS")
    assert ours["divisions"] == tuple(kpoints.kpts[0])
    assert ours["style"].lower().startswith(kpoints.style.name.lower()[:5])


def test_time_reversal_reduced_mesh_has_the_right_weights(tmp_path: Path) -> None:
    s = Structure(Lattice.cubic(4.0), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    write_job(tmp_path, s, {"ISPIN": 1}, kpoints=(4, 4, 4))
    job = read_job(tmp_path)
    assert len(job.kpoints) == 36  # (64 + 8 time-reversal-invariant points) / 2
    assert job.kweights.sum() == pytest.approx(1.0)
    assert job.nelect == 8 + 6


def test_mismatched_potcar_is_an_input_error(tmp_path: Path) -> None:
    s = Structure(Lattice.cubic(4.0), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    write_job(tmp_path, s, {"ISPIN": 1}, potcar_symbols=["O", "Mg_pv"])
    with pytest.raises(InputError, match="does not match"):
        read_job(tmp_path)
