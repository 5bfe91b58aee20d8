"""Unit tests of the fast readers: file finding, bad input, fallbacks, the small text files."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from polaronflow.analysis import _bytesio, _vasprun
from polaronflow.analysis.readers import (
    find_run_files,
    functional_label,
    read_doscar,
    read_incar,
    read_outcar_moments,
    read_pdos,
    read_run,
    read_structure_file,
)
from polaronflow.analysis.rundata import SYNTHETIC_MARKER
from polaronflow.errors import RunReadError

CORPUS = Path(__file__).resolve().parents[1] / "data" / "vasp-corpus"
needs_corpus = pytest.mark.usefixtures("corpus_dir")  # fails (never skips) without it


def _raw(case: str, name: str = "vasprun.xml.gz") -> bytes:
    hits = list(CORPUS.glob(f"**/{case}/{name}"))
    if not hits:
        pytest.fail(f"corpus file {case}/{name} missing")
    return gzip.open(hits[0]).read()


# --- finding files ------------------------------------------------------------------------


def test_find_run_files_prefers_plain_then_gz_then_last_relax(tmp_path):
    for name in ("vasprun.xml.relax1.gz", "vasprun.xml.relax2.gz", "OUTCAR.gz", "OUTCAR"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "CONTCAR.relax1").write_bytes(b"x")
    (tmp_path / "notes.txt").write_bytes(b"x")
    found = find_run_files(tmp_path)
    assert found == {
        "vasprun": tmp_path / "vasprun.xml.relax2.gz",
        "outcar": tmp_path / "OUTCAR",
        "contcar": tmp_path / "CONTCAR.relax1",
    }
    assert find_run_files(tmp_path / "OUTCAR.gz") == {"outcar": tmp_path / "OUTCAR.gz"}


def test_bad_paths_raise_run_read_error(tmp_path):
    with pytest.raises(RunReadError, match="no such run folder"):
        read_run(tmp_path / "missing")
    with pytest.raises(RunReadError, match="no VASP output files"):
        read_run(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(RunReadError, match="not a VASP output file name"):
        read_run(tmp_path / "notes.txt")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (bytes(range(256)) * 40, "not an XML file"),
        (b"this is not xml\n" * 10, "not an XML file"),
        (b'<?xml version="1.0"?>\n<root><a>1</a></root>\n', "not a vasprun.xml"),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_junk_vasprun(tmp_path, content, reason, gz):
    name = "vasprun.xml.gz" if gz else "vasprun.xml"
    (tmp_path / name).write_bytes(gzip.compress(content) if gz else content)
    with pytest.raises(RunReadError, match=reason) as info:
        read_run(tmp_path)
    assert name in str(info.value)
    run = read_run(tmp_path, strict=False)
    assert not run.complete and not run.converged and run.final_energy is None
    assert any(reason in p for p in run.problems)


def test_corrupt_gzip(tmp_path):
    (tmp_path / "OUTCAR.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 200)
    with pytest.raises(RunReadError, match=r"OUTCAR\.gz.*gzip"):
        read_run(tmp_path)


# --- the synthetic marker -----------------------------------------------------------------


@needs_corpus
def test_synthetic_marker_is_detected(tmp_path):
    raw = _raw("MgO_bulk_prim")
    head, rest = raw.split(b"\n", 1)
    marked = head + f"\n<!-- {SYNTHETIC_MARKER}: written by the emulator -->\n".encode() + rest
    (tmp_path / "vasprun.xml").write_bytes(marked)
    assert read_run(tmp_path).synthetic
    (tmp_path / "vasprun.xml").write_bytes(raw)
    assert not read_run(tmp_path).synthetic


# --- fallbacks ----------------------------------------------------------------------------


@needs_corpus
def test_general_parser_fallback_gives_the_same_numbers(tmp_path):
    raw = _raw("FeO_U_relax_custodian")
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    (ref_dir / "vasprun.xml").write_bytes(raw)
    ref = read_run(ref_dir)
    # "<r >" is valid XML the fast path does not expect: counts mismatch -> xml.etree.
    odd = raw.replace(b"<r>", b"<r >")
    (tmp_path / "vasprun.xml").write_bytes(odd)
    run = read_run(tmp_path)
    np.testing.assert_array_equal(run.eigenvalues, ref.eigenvalues)
    np.testing.assert_array_equal(run.total_dos, ref.total_dos)
    block = odd[odd.index(b"<total>") : odd.index(b"</total>") + 8]
    with pytest.raises(_vasprun.FastPathMiss):
        _vasprun.rows_fast(block, 3)
    stats: dict[str, int] = {}
    got = _vasprun.rows(block, 3, stats)[:, 1].reshape(ref.total_dos.shape)
    np.testing.assert_array_equal(got, ref.total_dos)
    assert stats == {"fallback": 1}


def test_fortran_overflow_becomes_nan():
    block = b"<total><array><set><r> 1.0 2.0 </r><r> ******** 4.0 </r></set></array></total>"
    arr = _vasprun.rows(block, 2)
    assert arr.shape == (2, 2) and np.isnan(arr[1, 0]) and arr[1, 1] == 4.0


@needs_corpus
def test_gzip_filter_handles_tags_split_across_chunks(tmp_path, monkeypatch):
    src = next(CORPUS.glob("**/FeO_U_relax_custodian/vasprun.xml.gz"))
    ref = read_run(src, pdos=True)
    monkeypatch.setattr(_bytesio, "_CHUNK_OUT", 97)
    monkeypatch.setattr(_bytesio, "_CHUNK_IN", 61)
    for pdos in (False, True):
        run = read_run(src, pdos=pdos)
        np.testing.assert_array_equal(run.eigenvalues, ref.eigenvalues)
        np.testing.assert_array_equal(run.occupations, ref.occupations)
        np.testing.assert_array_equal(run.total_dos, ref.total_dos)
        assert run.ionic_energies == ref.ionic_energies
        if pdos:
            np.testing.assert_array_equal(run.pdos, ref.pdos)
    data, complete = _bytesio.gunzip(src, ((b"<projected>", b"</projected>", None),))
    assert complete and b"<projected>\n</projected>" in data


@needs_corpus
def test_partial_skip_estimate_miss_falls_back_to_search(tmp_path):
    raw = _raw("LiFePO4_112at_U_relax")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "vasprun.xml").write_bytes(raw)
    ref = read_run(tmp_path / "a", pdos=True)
    # Padding inside the last ion's block breaks the equal-size assumption of the estimate.
    at = raw.index(b"</partial>")
    padded = raw[:at] + b" " * 2_000_000 + raw[at:]
    (tmp_path / "vasprun.xml").write_bytes(padded)
    lay = _vasprun.locate(padded, 112)
    assert lay.skips == {"partial": "scan", "projected": "tail"}
    assert _vasprun.locate(raw, 112).skips == {"partial": "estimate", "projected": "tail"}
    run = read_run(tmp_path, pdos=True)
    np.testing.assert_array_equal(run.pdos, ref.pdos)
    np.testing.assert_array_equal(run.eigenvalues, ref.eigenvalues)


# --- OUTCAR, OSZICAR, mismatches ------------------------------------------------------------


@needs_corpus
def test_read_outcar_moments_and_errors(tmp_path):
    folder = next(CORPUS.glob("**/FeO_U_relax_custodian"))
    tot, orb, labels = read_outcar_moments(folder)
    assert tot[0] == pytest.approx(3.007) and labels == ["s", "p", "d"]
    np.testing.assert_allclose(orb.sum(axis=1), tot, atol=2e-3)
    with pytest.raises(RunReadError, match="no OUTCAR"):
        read_outcar_moments(next(CORPUS.glob("**/MgO_bulk_prim")))
    text = gzip.open(folder / "OUTCAR.gz").read()
    (tmp_path / "OUTCAR").write_bytes(text.replace(b"magnetization (x)", b"magnetisation"))
    with pytest.raises(RunReadError, match="no 'magnetization"):
        read_outcar_moments(tmp_path / "OUTCAR")


@needs_corpus
def test_oszicar_alone_gives_steps(tmp_path):
    folder = next(CORPUS.glob("**/FeO_U_relax_custodian"))
    ref = read_run(folder)
    run = read_run(folder / "OSZICAR.gz", strict=False)
    assert run.electronic_steps == ref.electronic_steps
    np.testing.assert_allclose(run.ionic_energies, ref.ionic_energies, atol=1e-4)
    assert run.total_moment == pytest.approx(4.0, abs=1e-3)
    assert not run.complete  # an OSZICAR cannot say whether the run finished


@needs_corpus
def test_mismatched_outcar_is_refused(tmp_path):
    shutil.copy(next(CORPUS.glob("**/MgO_bulk_prim/vasprun.xml.gz")), tmp_path)
    shutil.copy(next(CORPUS.glob("**/FeO_U_relax_custodian/OUTCAR.gz")), tmp_path)
    with pytest.raises(RunReadError, match="mismatched"):
        read_run(tmp_path)


@needs_corpus
def test_lazy_pdos_equals_eager():
    folder = next(CORPUS.glob("**/LiFePO4_112at_U_relax"))
    run = read_run(folder)
    assert run.pdos is None
    pdos, orbitals, energies = read_pdos(run)
    assert run.pdos is pdos and orbitals[-1] == "dx2_y2"
    np.testing.assert_array_equal(pdos, read_run(folder, pdos=True).pdos)
    np.testing.assert_array_equal(energies, run.dos_energies)
    np.testing.assert_array_equal(read_pdos(folder)[0], pdos)


# --- INCAR, POSCAR, DOSCAR ------------------------------------------------------------------


def test_read_incar(tmp_path):
    (tmp_path / "INCAR").write_text(
        "SYSTEM = Mg in WO3 ! comment\nISPIN = 2; NUPDOWN = 2\nLDAU = .TRUE.\n"
        "LDAUU = 5 0 0   # U on W\nMETAGGA = R2SCAN\nEDIFF = 1E-5\nLASPH = T\n"
    )
    incar = read_incar(tmp_path / "INCAR")
    assert incar == {
        "SYSTEM": "Mg in WO3",
        "ISPIN": 2,
        "NUPDOWN": 2,
        "LDAU": True,
        "LDAUU": [5, 0, 0],
        "METAGGA": "R2SCAN",
        "EDIFF": 1e-5,
        "LASPH": True,
    }
    assert functional_label(incar) == "R2SCAN"


@pytest.mark.parametrize(
    ("incar", "label"),
    [
        ({"GGA": "PS"}, "PBESOL"),
        ({"GGA": "PE", "IVDW": 12}, "PBE+D3(BJ)"),
        ({"LHFCALC": True, "HFSCREEN": 0.2}, "HSE06"),
        ({"METAGGA": "SCAN", "LUSE_VDW": True, "BPARAM": 15.7}, "SCAN+rVV10"),
        ({"METAGGA": "--", "GGA": "--"}, "PBE"),
    ],
)
def test_functional_label(incar, label):
    assert functional_label(incar, {}, ["PAW_PBE W_sv 04Sep2015"]) == label


def test_read_structure_file_matches_pymatgen(tmp_path):
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.vasp import Poscar

    s = Structure(
        Lattice([[7.3, 0.1, 0.0], [0.0, 7.5, 0.2], [0.1, 0.0, 7.7]]),
        ["W", "W", "O", "Mg"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0.0, 0.0], [0.5, 0.5, 0.0]],
    )
    Poscar(s).write_file(tmp_path / "CONTCAR")
    st = read_structure_file(tmp_path / "CONTCAR")
    assert st.species == ["W", "W", "O", "Mg"]
    np.testing.assert_allclose(st.lattice, s.lattice.matrix, atol=1e-8)
    np.testing.assert_allclose(st.frac_coords, s.frac_coords, atol=1e-8)
    # Cartesian coordinates, selective dynamics and a negative (volume) scale.
    cart = s.cart_coords
    lines = [
        "cartesian",
        f"-{s.volume:.10f}",
        *[" ".join(f"{x:.10f}" for x in row) for row in s.lattice.matrix],
        "W O Mg",
        "2 1 1",
        "Selective dynamics",
        "Cartesian",
        *[" ".join(f"{x:.10f}" for x in row) + " T T T" for row in cart],
    ]
    (tmp_path / "POSCAR").write_text("\n".join(lines) + "\n")
    st2 = read_structure_file(tmp_path / "POSCAR")
    np.testing.assert_allclose(st2.frac_coords, s.frac_coords, atol=1e-8)
    (tmp_path / "BAD").write_text("a\n1.0\n1 0 0\n0 1 0\n")
    with pytest.raises(RunReadError, match="not a readable POSCAR"):
        read_structure_file(tmp_path / "BAD")


def _doscar_text() -> str:
    head = (
        "   2   2   1   0\n  0.1E+02  0.1E-08  0.1E-08  0.1E-08  0.5E-15\n  1.0E-004\n  CAR\n sys\n"
    )
    grid = "      2.00000000     -1.00000000      3      0.50000000      1.00000000\n"
    tot = "".join(f"  {e:.4f}  {e + 1:.4f}  {e + 2:.4f}  0.0  0.0\n" for e in (-1.0, 0.5, 2.0))
    body = ""
    for ion in range(2):
        body += grid
        for e in (-1.0, 0.5, 2.0):
            body += f"  {e:.4f}" + "".join(f"  {ion + 0.01 * k:.4f}" for k in range(18)) + "\n"
    return head + grid + tot + body


def test_read_doscar_and_pdos_fallback(tmp_path):
    (tmp_path / "DOSCAR").write_text(_doscar_text())
    d = read_doscar(tmp_path / "DOSCAR")
    assert d["efermi"] == 0.5
    np.testing.assert_allclose(d["energies"], [-1.0, 0.5, 2.0])
    np.testing.assert_allclose(d["total"], [[0.0, 1.5, 3.0], [1.0, 2.5, 4.0]])
    assert d["pdos"].shape == (2, 2, 9, 3)  # (sites, spin, orbitals, energies)
    # columns alternate up/down per orbital: s_up s_dn py_up py_dn ...
    assert d["pdos"][1, 0, 1, 0] == pytest.approx(1.02)
    assert d["pdos"][1, 1, 1, 0] == pytest.approx(1.03)
    assert d["orbitals"][-1] == "dx2_y2"
    pdos, _orbitals, _energies = read_pdos(tmp_path)
    np.testing.assert_array_equal(pdos, d["pdos"])
    (tmp_path / "DOSCAR").write_text(_doscar_text()[:300])
    with pytest.raises(RunReadError, match="DOSCAR"):
        read_doscar(tmp_path / "DOSCAR")


@needs_corpus
def test_outcar_from_another_run_is_refused(tmp_path):
    folder = next(CORPUS.glob("**/FeO_U_relax_custodian"))
    shutil.copy(folder / "vasprun.xml.gz", tmp_path)
    text = gzip.open(folder / "OUTCAR.gz").read()
    at = text.rindex(b"free  energy   TOTEN")
    end = text.index(b"eV", at)
    forged = text[:at] + b"free  energy   TOTEN  =       -27.00000000 " + text[end:]
    (tmp_path / "OUTCAR").write_bytes(forged)
    with pytest.raises(RunReadError, match=r"mismatched.*final energy"):
        read_run(tmp_path)


@needs_corpus
def test_outcar_only_functional_needs_the_incar(tmp_path):
    folder = next(CORPUS.glob("**/LiF_r2SCAN"))
    shutil.copy(folder / "OUTCAR.gz", tmp_path)
    # The OUTCAR alone says METAGGA = F: r2SCAN cannot be told from it, so it is "unknown"
    # (None), not a guessed "PBE" ...
    assert read_run(tmp_path).functional is None
    # ...but an INCAR beside it can.
    (tmp_path / "INCAR").write_text("METAGGA = R2SCAN\nLASPH = .TRUE.\n")
    run = read_run(tmp_path)
    assert run.functional == "R2SCAN" and run.parameters["METAGGA"] == "R2SCAN"


@needs_corpus
def test_fixed_width_parser_equals_text_parser():
    from polaronflow.analysis.readers import _open_vasprun

    checked = 0
    for f in sorted(CORPUS.glob("**/vasprun.xml.gz")):
        buf, _ = _open_vasprun(f, keep_partial=True)
        lay = _vasprun.locate(buf, 0)
        if lay.partial is None:
            continue
        a, b = lay.partial
        ncols = len(_vasprun.fields(bytes(buf[a : buf.find(b"<set", a)])))
        fixed = _vasprun.rows_fixed_width(buf, a, b, ncols)
        assert fixed is not None, f
        np.testing.assert_array_equal(fixed, _vasprun.rows_fast(bytes(buf[a:b]), ncols))
        checked += 1
    assert checked >= 8


def _block(rows: list[str]) -> bytes:
    body = "".join(f"    <r>{r}</r>\n" for r in rows)
    return f'<partial>\n <set comment="spin 1">\n{body} </set>\n</partial>\n'.encode()


@pytest.mark.parametrize(
    ("rows", "fixed_ok"),
    [
        (["  -1.5000   0.0012 ", "  10.2500  -0.0100 "], True),
        (["  -1.5000   0.0012 ", "  10.2500  -0.0100  "], False),  # ragged row
        (["  -1.5000   0.0012 ", "  1.0E+01   0.0100 "], False),  # exponent
        (["  -1.5000   0.0012 ", "  *******   0.0100 "], False),  # Fortran overflow
    ],
)
def test_fixed_width_parser_refuses_irregular_rows(rows, fixed_ok):
    block = _block(rows)
    fixed = _vasprun.rows_fixed_width(block, 0, len(block), 2)
    if fixed_ok:
        np.testing.assert_array_equal(fixed, [[-1.5, 0.0012], [10.25, -0.01]])
    else:
        assert fixed is None


@needs_corpus
def test_unrecognised_layout_falls_back_to_pymatgen(tmp_path):
    raw = _raw("O2_molecule")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "vasprun.xml").write_bytes(raw)
    ref = read_run(tmp_path / "a", pdos=True)
    # Valid XML the byte-offset walker does not know: no "<calculation>" literal any more.
    (tmp_path / "vasprun.xml").write_bytes(raw.replace(b"<calculation>", b"<calculation >"))
    run = read_run(tmp_path, pdos=True)
    assert run.final_energy_sigma0 == ref.final_energy_sigma0
    assert run.ionic_energies == ref.ionic_energies
    assert run.electronic_steps == ref.electronic_steps
    for name in ("eigenvalues", "occupations", "total_dos", "pdos", "lattice", "frac_coords"):
        np.testing.assert_allclose(getattr(run, name), getattr(ref, name), atol=1e-10)
    assert run.pdos_orbitals == ref.pdos_orbitals
    assert run.functional == ref.functional == "PBESOL"
    assert run.converged and run.total_moment == pytest.approx(2.0, abs=1e-4)


@needs_corpus
def test_plain_zlib_when_isal_is_missing(monkeypatch):
    import zlib

    src = next(CORPUS.glob("**/Li8NO3_SCAN_rVV10/vasprun.xml.gz"))
    ref = read_run(src)
    monkeypatch.setattr(_bytesio, "_zlib_impl", zlib)
    run = read_run(src)
    np.testing.assert_array_equal(run.occupations, ref.occupations)
    assert run.synthetic is False and run.final_energy == ref.final_energy


@needs_corpus
def test_eigen_and_dos_can_be_skipped():
    folder = next(CORPUS.glob("**/FeO_U_relax_custodian"))
    run = read_run(folder, eigen=False, dos=False)
    assert run.eigenvalues is None and run.occupations is None
    assert run.total_dos is None and run.pdos is None
    assert run.efermi is not None and run.converged
    assert run.total_moment == pytest.approx(4.0, abs=1e-3)  # from the OUTCAR


@needs_corpus
def test_fast_path_never_imports_pymatgen():
    import subprocess
    import sys

    folder = next(CORPUS.glob("**/FeO_U_relax_custodian"))
    code = (
        "import sys; from polaronflow.analysis.readers import read_run;"
        f"read_run({str(folder)!r}, pdos=True);"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pymatgen', 'xml')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
