"""The fast readers against pymatgen and against the corpus README, on real VASP files.

The corpus is vendored in tests/data/vasp-corpus (see its README); every test here fails
cleanly when it is absent.
"""

from __future__ import annotations

import gzip
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from polaronflow.analysis.readers import read_run
from polaronflow.errors import RunReadError

CORPUS = Path(__file__).resolve().parents[1] / "data" / "vasp-corpus"

pytestmark = pytest.mark.usefixtures("corpus_dir")  # fails (never skips) without the corpus

VASPRUNS = sorted(CORPUS.glob("**/vasprun.xml.gz")) if CORPUS.is_dir() else []
OUTCARS = sorted(CORPUS.glob("**/OUTCAR.gz")) if CORPUS.is_dir() else []

#: Parameters RunData promises; the ones VASP's <parameters> echo gets wrong come from <incar>.
PARAMS = (
    "ISPIN NUPDOWN LORBIT ENCUT NELM EDIFF EDIFFG NSW IBRION ISIF ISMEAR SIGMA "
    "LDAU LDAUTYPE LDAUU LDAUL LDAUJ GGA METAGGA NELECT NBANDS"
).split()
FROM_INCAR = {"METAGGA", "GGA", "LDAU", "LDAUTYPE", "LDAUU", "LDAUL", "LDAUJ"}


def _case(name: str) -> Path:
    hits = [p for p in CORPUS.glob(f"**/{name}") if p.is_dir()]
    if not hits:
        pytest.fail(f"corpus case {name} missing")
    return hits[0]


def _norm(v):
    return v.lower() if isinstance(v, str) else v


@pytest.fixture(scope="module", params=VASPRUNS, ids=lambda p: p.parent.name)
def pair(request):
    from pymatgen.io.vasp import Vasprun

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vr = Vasprun(str(request.param), parse_potcar_file=False)
    return read_run(request.param, pdos=True), vr


def _close(a, b, atol=1e-8):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=atol, rtol=0)


def test_energies_and_steps_equal_pymatgen(pair):
    run, vr = pair
    _close(run.final_energy_sigma0, vr.final_energy)
    _close(run.final_energy, vr.ionic_steps[-1]["e_fr_energy"])
    _close(run.ionic_energies, [s["e_fr_energy"] for s in vr.ionic_steps])
    assert run.electronic_steps == [len(s["electronic_steps"]) for s in vr.ionic_steps]
    _close(run.efermi, vr.efermi)


def test_structures_forces_kpoints_equal_pymatgen(pair):
    run, vr = pair
    assert run.species == [str(s.specie) for s in vr.final_structure]
    _close(run.lattice, vr.final_structure.lattice.matrix)
    _close(run.frac_coords, vr.final_structure.frac_coords)
    _close(run.initial_lattice, vr.initial_structure.lattice.matrix)
    _close(run.initial_frac_coords, vr.initial_structure.frac_coords)
    _close(run.forces, vr.ionic_steps[-1]["forces"])
    _close(run.stress, vr.ionic_steps[-1]["stress"])
    _close(run.kpoints, vr.actual_kpoints)
    _close(run.kpoint_weights, vr.actual_kpoints_weights)
    assert run.potcars == [" ".join(s.split()) for s in vr.potcar_symbols]


def test_eigenvalues_and_dos_equal_pymatgen(pair):
    from pymatgen.electronic_structure.core import Spin

    run, vr = pair
    spins = [Spin.up, Spin.down][: len(vr.eigenvalues)]
    _close(run.eigenvalues, [vr.eigenvalues[s][..., 0] for s in spins])
    _close(run.occupations, [vr.eigenvalues[s][..., 1] for s in spins])
    _close(run.dos_energies, vr.tdos.energies)
    _close(run.total_dos, [vr.tdos.densities[s] for s in spins])
    if vr.pdos:
        orbs = list(vr.pdos[0])
        assert run.pdos_orbitals == [o.name for o in orbs]
        ref = [[[site[o][s] for o in orbs] for s in spins] for site in vr.pdos]
        _close(run.pdos, ref)


def test_parameters_and_flags_equal_pymatgen(pair):
    run, vr = pair
    for key in PARAMS:
        src = vr.incar if (key in FROM_INCAR and key in vr.incar) else vr.parameters
        if key in src:
            assert _norm(run.parameters[key]) == _norm(src[key]), key
    assert {k: _norm(v) for k, v in run.incar.items()} == {k: _norm(v) for k, v in vr.incar.items()}
    assert run.complete
    assert run.electronic_converged == vr.converged_electronic
    assert run.ionic_converged == vr.converged_ionic


@pytest.mark.parametrize("path", OUTCARS, ids=lambda p: p.parent.name)
def test_outcar_equals_pymatgen(path):
    from pymatgen.io.vasp import Outcar

    out = Outcar(str(path))
    run = read_run(path)
    _close(run.site_moments, [m["tot"] for m in out.magnetization])
    labels = [k for k in out.magnetization[0] if k != "tot"]
    assert run.site_moments_orbitals == labels
    _close(run.site_moments_orbital, [[m[k] for k in labels] for m in out.magnetization])
    _close(run.final_energy_sigma0, out.final_energy)
    _close(run.final_energy, out.final_fr_energy)
    _close(run.total_moment, out.total_mag)
    _close(run.efermi, out.efermi)


def test_plain_and_gzipped_read_the_same(tmp_path):
    src = _case("LiFePO4_112at_U_relax") / "vasprun.xml.gz"
    plain = tmp_path / "vasprun.xml"
    with gzip.open(src) as fin, open(plain, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    a, b = read_run(plain, pdos=True), read_run(src, pdos=True)
    for name in ("eigenvalues", "occupations", "total_dos", "pdos", "lattice", "frac_coords"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.ionic_energies == b.ionic_energies
    assert a.parameters == b.parameters


# --- the corpus README's numbers ----------------------------------------------------------


def test_readme_feo():
    run = read_run(_case("FeO_U_relax_custodian"))
    assert round(run.final_energy_sigma0, 4) == -28.2185
    assert run.total_moment == pytest.approx(4.0, abs=1e-3)
    assert run.site_moments[0] == pytest.approx(3.007, abs=5e-4)
    assert abs(run.site_moments[2]) == pytest.approx(0.189, abs=5e-4)
    assert run.site_moments_orbitals == ["s", "p", "d"]
    assert run.parameters["LDAUU"] == [4.0, 0.0]
    assert run.converged and run.ispin == 2
    assert set(run.files) == {"vasprun", "outcar", "oszicar"}


def test_readme_lifepo4_occupation_moment():
    run = read_run(_case("LiFePO4_112at_U_relax"))
    assert round(run.final_energy_sigma0, 4) == -773.1302
    assert run.total_moment == pytest.approx(1.0, abs=1e-3)
    # <parameters> truncates the LDAU lists to one species; <incar> has all six.
    assert run.parameters["LDAUU"] == [0.0, 4.3, 4.3, 4.3, 0.0, 0.0]


def test_readme_lini2o4_outcar_only():
    run = read_run(_case("LiNi2O4_U_relax_outcar"))
    assert run.files.keys() == {"outcar"}
    assert round(run.final_energy_sigma0, 4) == -34.0073
    assert run.site_moments[1] == pytest.approx(0.813, abs=5e-4)
    assert run.total_moment == pytest.approx(1.0, abs=1e-3)
    assert run.parameters["LDAUU"][1] == pytest.approx(6.0)
    assert run.lattice is not None and run.frac_coords.shape == (len(run.species), 3)


def test_readme_r2scan_from_vasprun_although_outcar_says_f():
    folder = _case("LiF_r2SCAN")
    run = read_run(folder)
    assert round(run.final_energy_sigma0, 4) == -9.6459
    assert run.functional == "R2SCAN"
    assert b"METAGGA=      F" in gzip.open(folder / "OUTCAR.gz").read()


def test_readme_scan_rvv10():
    run = read_run(_case("Li8NO3_SCAN_rVV10"))
    assert round(run.final_energy_sigma0, 4) == -64.1630
    assert run.functional == "SCAN+rVV10"
    assert run.total_moment == pytest.approx(1.0, abs=1e-3)


def test_readme_vox_electronically_unconverged():
    run = read_run(_case("VOx_U_unconverged"))
    assert run.complete
    assert not run.electronic_converged and not run.converged
    assert any("electronically unconverged" in p for p in run.problems)


@pytest.mark.parametrize(
    ("case", "energy", "functional"),
    [
        ("MgO_bulk_prim", -12.5168, "PBESOL"),
        ("Mg_hcp_metal", -6.9442, "PBESOL"),
        ("O2_molecule", -10.2701, "PBESOL"),
        ("WO3_cubic_PBE", -36.0356, "PBE"),
    ],
)
def test_readme_energies(case, energy, functional):
    run = read_run(_case(case))
    assert round(run.final_energy_sigma0, 4) == energy
    assert run.functional == functional
    assert run.converged


def test_kpoint_generation_and_version():
    run = read_run(_case("MgO_bulk_prim"))
    assert run.kpoint_generation["style"] == "Gamma"
    assert run.kpoint_generation["mesh"] == [8, 8, 8]
    assert run.vasp_version.startswith("6.2.0 18Jan21")
    assert read_run(_case("LiNi2O4_U_relax_outcar")).vasp_version == "vasp.5.2.11"


def test_readme_o2_and_wo3_spin():
    o2 = read_run(_case("O2_molecule"))
    assert o2.ispin == 2 and o2.parameters["NUPDOWN"] == 2
    assert o2.total_moment == pytest.approx(2.0, abs=1e-4)
    wo3 = read_run(_case("WO3_cubic_PBE"))
    assert wo3.ispin == 1
    assert wo3.site_moments is None and wo3.total_moment is None


def test_readme_eubafbr_nupdown():
    run = read_run(_case("EuBaFBr_Eu_U_108at"))
    assert run.nsites == 108 and run.parameters["NUPDOWN"] == 6
    assert run.total_moment == pytest.approx(6.0, abs=1e-3)


# --- truncated copies ---------------------------------------------------------------------


@pytest.mark.parametrize("where", [0.5, 0.98])
@pytest.mark.parametrize("gz", [False, True])
def test_truncated_copy_is_never_complete(tmp_path, where, gz):
    raw = gzip.open(_case("FeO_U_relax_custodian") / "vasprun.xml.gz").read()
    cut = raw[: int(len(raw) * where)]
    dest = tmp_path / ("vasprun.xml.gz" if gz else "vasprun.xml")
    dest.write_bytes(gzip.compress(cut) if gz else cut)
    run = read_run(tmp_path, strict=False)
    assert not run.complete and not run.converged
    assert not run.electronic_converged and not run.ionic_converged
    assert any("truncated" in p for p in run.problems)
    assert run.final_energy is not None  # what is there is read
    with pytest.raises(RunReadError, match=r"vasprun\.xml.*truncated"):
        read_run(tmp_path)


def test_gzip_stream_cut_short(tmp_path):
    data = (_case("MgO_bulk_prim") / "vasprun.xml.gz").read_bytes()
    (tmp_path / "vasprun.xml.gz").write_bytes(data[: len(data) * 3 // 4])
    run = read_run(tmp_path, strict=False)
    assert not run.complete and not run.converged
    with pytest.raises(RunReadError, match="truncated"):
        read_run(tmp_path)


def test_truncated_inside_partial_uses_general_search(tmp_path):
    raw = gzip.open(_case("LiFePO4_112at_U_relax") / "vasprun.xml.gz").read()
    cut = raw[: raw.index(b"</partial>") - 5000]
    (tmp_path / "vasprun.xml").write_bytes(cut)
    run = read_run(tmp_path, strict=False)
    assert not run.complete and not run.converged
    assert any("<partial>" in p for p in run.problems)


def test_truncated_outcar_beside_complete_vasprun(tmp_path):
    folder = _case("FeO_U_relax_custodian")
    shutil.copy(folder / "vasprun.xml.gz", tmp_path)
    text = gzip.open(folder / "OUTCAR.gz").read()
    (tmp_path / "OUTCAR").write_bytes(text[: len(text) - 3000])
    run = read_run(tmp_path, strict=False)
    assert not run.complete and not run.converged
    assert run.site_moments is not None  # the last complete table is still read
    with pytest.raises(RunReadError, match=r"OUTCAR.*truncated"):
        read_run(tmp_path)
