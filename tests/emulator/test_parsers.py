"""The field's parsers accept the emulator's files and read back the scenario's physics."""

from __future__ import annotations

import itertools
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from polaronflow.analysis.rundata import SYNTHETIC_MARKER
from polaronflow.emulator import run_emulator, write_large_run
from polaronflow.emulator.jobs import reo3_cell, scan_u_incar, write_job
from polaronflow.emulator.scenario import load_scenario


@pytest.fixture(scope="module")
def doped_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("doped")
    structure = reo3_cell(2, dopant="Mg")
    magmom = [0.0] * len(structure)
    magmom[2] = magmom[5] = 1.0
    incar = scan_u_incar(
        {"W": 8, "O": 24, "Mg": 1},
        MAGMOM=magmom,
        NSW=30,
        IBRION=2,
        ISIF=3,
        NEDOS=2001,
        EMIN=-8.0,
        EMAX=10.0,
    )
    write_job(folder, structure, incar, kpoints=(2, 2, 2))
    run_emulator(folder)
    return folder


def _expected_energy(folder: Path) -> float:
    """Composition + configuration + functional/ENCUT energy of the relaxed doped cell."""
    from polaronflow.emulator.energy import configuration_energy, functional_and_encut
    from polaronflow.emulator.inputs import read_job

    scen = load_scenario("paper_like")
    job = read_job(folder)
    composition = 8 * scen.host.energy_per_formula_unit + scen.dopants["Mg"].energy_per_dopant
    config = configuration_energy(job, scen, [2, 5], [1.0, 1.0])
    return composition + config + functional_and_encut(job, scen)


def test_pymatgen_reads_vasprun_without_warnings(doped_run: Path) -> None:
    from pymatgen.io.vasp import Vasprun

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vr = Vasprun(doped_run / "vasprun.xml", parse_projected_eigen=True, parse_potcar_file=False)
    scen = load_scenario("paper_like")
    assert vr.converged
    assert len(vr.ionic_steps) == scen.relaxation.ionic_steps
    energies = [s["e_fr_energy"] for s in vr.ionic_steps]
    assert all(b < a for a, b in itertools.pairwise(energies))
    assert vr.final_energy == pytest.approx(_expected_energy(doped_run), abs=1e-6)
    # not the round composition energy: configuration, ENCUT terms are in it
    composition = 8 * scen.host.energy_per_formula_unit + scen.dopants["Mg"].energy_per_dopant
    assert abs(vr.final_energy - composition) > 0.05
    # SIGMA = 0.05 leaves Gaussian tails on the CBM (as in real VASP): occupied above 0.01.
    vr = Vasprun(
        doped_run / "vasprun.xml",
        parse_projected_eigen=True,
        parse_potcar_file=False,
        occu_tol=0.01,
    )
    gap, cbm, vbm, _ = vr.eigenvalue_band_properties
    # The occupied polaron level sits `ingap_depth` below the CBM (both W equidistant).
    assert cbm == pytest.approx(scen.host.cbm, abs=1e-3)
    assert gap == pytest.approx(scen.dopants["Mg"].ingap_depth, abs=2e-3)
    assert vbm < vr.efermi < cbm
    dos = vr.complete_dos
    assert vr.run_type == "SCAN+U"
    assert dos.energies.shape == (2001,)
    max_force = np.abs(vr.ionic_steps[-1]["forces"]).max()
    assert max_force < 0.01
    assert vr.projected_eigenvalues is not None


def test_pdos_puts_the_in_gap_state_on_the_seeded_w(doped_run: Path) -> None:
    from pymatgen.electronic_structure.core import Spin
    from pymatgen.io.vasp import Vasprun

    vr = Vasprun(doped_run / "vasprun.xml", parse_potcar_file=False)
    dos = vr.complete_dos
    window = (dos.energies > 3.3) & (dos.energies < 3.8)
    weight = [
        float(dos.get_site_dos(site).densities[Spin.up][window].sum())
        for site in vr.final_structure
    ]
    top_two = sorted(np.argsort(weight)[-2:].tolist())
    assert top_two == [2, 5]


def test_outcar_and_oszicar(doped_run: Path) -> None:
    from pymatgen.io.vasp import Oszicar, Outcar

    out = Outcar(doped_run / "OUTCAR")
    moments = np.array([m["tot"] for m in out.magnetization])
    assert sorted(np.argsort(np.abs(moments))[-2:].tolist()) == [2, 5]
    # Gaussian tails of the empty CBM take a little of the moment, as in VASP
    assert out.total_mag == pytest.approx(2.0, abs=1e-3)
    assert out.run_stats["Elapsed time (sec)"] > 0
    assert out.final_energy == pytest.approx(Oszicar(doped_run / "OSZICAR").final_energy)
    assert len(Oszicar(doped_run / "OSZICAR").ionic_steps) == 4


def test_taskdoc_and_custodian_validators_accept_the_run(doped_run: Path) -> None:
    from custodian.vasp.handlers import UnconvergedErrorHandler, VaspErrorHandler
    from custodian.vasp.validators import VaspFilesValidator, VasprunXMLValidator
    from emmet.core.tasks import TaskDoc

    (doped_run / "vasp.out").write_text("")
    assert VasprunXMLValidator().check(str(doped_run)) is False
    assert VaspFilesValidator().check(str(doped_run)) is False
    assert UnconvergedErrorHandler().check(str(doped_run)) is False
    assert not VaspErrorHandler().check(str(doped_run))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        doc = TaskDoc.from_directory(doped_run)
    assert str(doc.state.value if hasattr(doc.state, "value") else doc.state) == "successful"
    assert doc.output.energy == pytest.approx(_expected_energy(doped_run), abs=1e-6)


def test_command_line_runs_as_vasp(tmp_path: Path) -> None:
    structure = reo3_cell(2, dopant=None)
    write_job(tmp_path, structure, scan_u_incar({"W": 8, "O": 24}, NSW=0, LORBIT=0))
    proc = subprocess.run(
        [sys.executable, "-m", "polaronflow.emulator"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert SYNTHETIC_MARKER in proc.stdout and "F=" in proc.stdout
    assert (tmp_path / "vasprun.xml").read_text().rstrip().endswith("</modeling>")
    # No site moments without LORBIT (as VASP): the table is absent.
    assert "magnetization (x)" not in (tmp_path / "OUTCAR").read_text()


def test_command_line_reports_bad_input(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "polaronflow.emulator"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "no INCAR" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_257_atom_lorbit11_run_parses_without_warnings(tmp_path: Path) -> None:
    from pymatgen.io.vasp import Vasprun

    write_large_run(tmp_path, natoms=257, nbands=1040, nedos=201, nkpts=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vr = Vasprun(tmp_path / "vasprun.xml", parse_potcar_file=False)
    assert len(vr.final_structure) == 257
    assert vr.parameters["NBANDS"] >= 1040 and vr.parameters["LORBIT"] == 11
    assert len(vr.complete_dos.pdos) == 257
