"""The fast readers on emulator output: same numbers as pymatgen, labelled synthetic."""

from __future__ import annotations

import gzip
import shutil
import warnings

import numpy as np
import pytest

from polaronflow.analysis.readers import read_run


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    from polaronflow.emulator import write_large_run

    # The benchmark's writer at a size that takes a second: same layout, LORBIT 11, ISPIN 2.
    return write_large_run(tmp_path_factory.mktemp("emu"), natoms=33, nbands=96, nedos=301, nkpts=2)


def test_emulator_run_equals_pymatgen(small_run):
    from pymatgen.electronic_structure.core import Spin
    from pymatgen.io.vasp import Outcar, Vasprun

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vr = Vasprun(str(small_run / "vasprun.xml"), parse_potcar_file=False)
        out = Outcar(str(small_run / "OUTCAR"))
    run = read_run(small_run, pdos=True)
    assert run.synthetic
    assert run.final_energy_sigma0 == pytest.approx(vr.final_energy, abs=1e-8)
    assert run.efermi == pytest.approx(vr.efermi, abs=1e-8)
    spins = (Spin.up, Spin.down)
    np.testing.assert_allclose(run.eigenvalues, [vr.eigenvalues[s][..., 0] for s in spins])
    np.testing.assert_allclose(run.occupations, [vr.eigenvalues[s][..., 1] for s in spins])
    np.testing.assert_allclose(run.total_dos, [vr.tdos.densities[s] for s in spins])
    orbs = list(vr.pdos[0])
    assert run.pdos_orbitals == [o.name for o in orbs]
    np.testing.assert_allclose(
        run.pdos, [[[site[o][s] for o in orbs] for s in spins] for site in vr.pdos]
    )
    np.testing.assert_allclose(run.site_moments, [m["tot"] for m in out.magnetization])
    np.testing.assert_allclose(run.lattice, vr.final_structure.lattice.matrix, atol=1e-8)
    assert run.species == [str(s.specie) for s in vr.final_structure]
    assert run.electronic_converged == vr.converged_electronic
    assert run.complete and run.functional == "SCAN"


def test_emulator_run_gzipped_reads_the_same(small_run, tmp_path):
    for f in small_run.iterdir():
        if f.name in ("vasprun.xml", "OUTCAR"):
            with open(f, "rb") as fin, gzip.open(tmp_path / (f.name + ".gz"), "wb") as fout:
                shutil.copyfileobj(fin, fout)
        elif f.is_file():
            shutil.copy(f, tmp_path)
    a, b = read_run(small_run), read_run(tmp_path)
    assert b.synthetic and b.files["vasprun"].name == "vasprun.xml.gz"
    np.testing.assert_array_equal(a.eigenvalues, b.eigenvalues)
    np.testing.assert_array_equal(a.total_dos, b.total_dos)
    np.testing.assert_array_equal(a.site_moments, b.site_moments)
    assert a.final_energy == b.final_energy and a.parameters == b.parameters
