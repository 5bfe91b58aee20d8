"""The DOS level method's windowed read of ``<partial>`` against pymatgen and the full parse.

``polaronflow analyze`` sums the site-projected DOS per element over the grid rows it needs,
straight from the vasprun.xml (``readers.open_partial``), instead of parsing the whole block:
the reported level, onset, depth and element character must be the numbers the full
projected DOS gives (pymatgen's, on a real VASP file), and a malformed block must stop the
command with a message, never give a number.
"""

from __future__ import annotations

import gzip
import json
import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from polaronflow.analysis import readers
from polaronflow.analysis.electronic import analyze_electronic
from polaronflow.analysis.readers import open_partial, read_run
from polaronflow.cli import main

FEO = "FeO_U_relax_custodian"  # real VASP: ISPIN 2, <partial> (s, p, d), in-gap Fe d level


def _analyze(args: list[str], capsys) -> tuple[int, dict | None, str]:
    code = main(["analyze", *args, "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def _no_full_parse(monkeypatch) -> None:
    def refuse(*_a, **_k):
        raise AssertionError("the full <partial> parse ran")

    monkeypatch.setattr(readers, "read_pdos", refuse)


def test_level_character_equal_pymatgen_on_real_feo(corpus_dir, capsys, monkeypatch):
    from pymatgen.electronic_structure.core import Spin
    from pymatgen.io.vasp import Vasprun

    folder = corpus_dir / FEO
    _no_full_parse(monkeypatch)  # the command users run takes the windowed path here
    code, report, err = _analyze([str(folder), "--cation", "Fe"], capsys)
    assert code == 0, err
    got = report["runs"][0]["electronic"]["level_dos"]
    assert got["method"] == "dos-peak" and "DOS projected on Fe+O" in got["detail"]
    monkeypatch.undo()

    # Reference: the same analysis on pymatgen's projected DOS (no files: no windowed read).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vr = Vasprun(str(folder / "vasprun.xml.gz"), parse_potcar_file=False)
    orbs = list(vr.pdos[0])
    spins = (Spin.up, Spin.down)
    pdos = np.array([[[site[o][s] for o in orbs] for s in spins] for site in vr.pdos])
    run = read_run(folder)
    ref_run = replace(run, files={}, pdos=pdos)
    np.testing.assert_array_equal(ref_run.dos_energies, vr.tdos.energies)
    ref = analyze_electronic(ref_run, dos_elements=["Fe", "O"]).level_dos
    assert ref is not None
    for key in ("level", "cbm", "depth"):
        assert got[key] == pytest.approx(getattr(ref, key), rel=1e-12, abs=1e-12)
    assert got["character"].keys() == ref.character.keys()
    for el, share in ref.character.items():
        assert got["character"][el] == pytest.approx(share, rel=1e-12, abs=1e-15)

    # And the character straight from pymatgen: element shares at the level's grid point.
    k = int(np.argmin(np.abs(vr.tdos.energies - got["level"])))
    at = {}
    for site, proj in zip(vr.final_structure, vr.pdos, strict=True):
        el = site.specie.symbol
        at[el] = at.get(el, 0.0) + sum(proj[o][s][k] for o in orbs for s in spins)
    total = sum(at.values())
    assert got["character"] == pytest.approx({el: w / total for el, w in at.items()}, rel=1e-12)
    assert got["character"]["Fe"] == pytest.approx(0.4919, abs=1e-4)


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    from polaronflow.emulator import write_large_run

    # The benchmark's writer (Mg-doped WO3, two polarons, LORBIT 11, ISPIN 2), small.
    return write_large_run(tmp_path_factory.mktemp("emu"), natoms=33, nbands=96, nedos=601, nkpts=2)


@pytest.mark.parametrize("access", ["pread", "mmap"])
def test_windowed_sums_equal_full_pdos(emulated, access, monkeypatch):
    run = read_run(emulated)
    full = read_run(emulated, pdos=True)
    if access == "mmap":  # a file read_run did not locate in this process: mapped, walked again
        monkeypatch.setattr(readers, "_PARTIAL_SPANS", {})
    index = open_partial(run)
    assert index is not None and index.nedos == len(run.dos_energies)
    assert isinstance(index.buf, readers._partial.FileBytes) == (access == "pread")
    for lo, hi in ((0, index.nedos), (250, 420), (599, 700)):
        sums = index.element_sums(run.species, lo, hi)
        for el in set(run.species):
            mask = np.array(run.species) == el
            expect = full.pdos[mask][..., lo:hi].sum(axis=(0, 2))
            np.testing.assert_allclose(sums[el], expect, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("located", [True, False])
def test_gzipped_rows_equal_plain_rows(emulated, tmp_path, located, monkeypatch):
    # Streamed (where read_run found the block) or inflated up to </partial> and walked again.
    gz = tmp_path / "vasprun.xml.gz"
    gz.write_bytes(gzip.compress((emulated / "vasprun.xml").read_bytes()))
    plain_run, gz_run = read_run(emulated), read_run(gz)
    if not located:
        monkeypatch.setattr(readers, "_PARTIAL_SPANS", {})
    held = open_partial(gz_run, rows=(250, 420))
    assert held is not None and held.covers(250, 420)
    # streamed: only the rows asked for are kept; walked again: the whole inflated block
    assert (held.row0, held.nedos) == ((250, 170) if located else (0, held.total))
    got = held.element_sums(gz_run.species, 250, 420)
    want = open_partial(plain_run).element_sums(plain_run.species, 250, 420)
    for el in want:
        np.testing.assert_array_equal(got[el], want[el])


@pytest.mark.parametrize("chunk", [7, 4096, 1 << 20])
def test_streamed_rows_equal_mapped_rows(emulated, chunk):
    # A gzipped vasprun.xml is streamed: tags and rows split across chunk boundaries.
    from polaronflow.analysis import _partial

    run = read_run(emulated)
    mapped = open_partial(run)
    raw = (emulated / "vasprun.xml").read_bytes()
    a = raw.index(b"<partial>")
    stream = _partial.ByteStream(iter([raw[i : i + chunk] for i in range(0, len(raw), chunk)]))
    held = _partial.index_partial(stream, (a, 1 << 62), len(run.species), 2, keep_rows=(250, 420))
    assert held is not None and held.covers(250, 420) and not held.covers(249, 420)
    assert held.total == mapped.total == len(run.dos_energies)
    got = held.element_sums(run.species, 260, 400)
    want = mapped.element_sums(run.species, 260, 400)
    for el in want:
        np.testing.assert_array_equal(got[el], want[el])
    assert held.element_sums(run.species, 200, 300) is None  # rows not held: not made up


def test_negative_projections_keep_their_sign(emulated, tmp_path):
    # The tetrahedron method can print small negative projections: the same width, a '-'.
    raw = (emulated / "vasprun.xml").read_bytes()
    at = raw.index(b'<set comment="ion 3">', raw.index(b"<partial>"))
    rows = [raw.index(b"<r>", at)]
    for _ in range(300):
        rows.append(raw.index(b"<r>", rows[-1] + 1))
    edited = bytearray(raw)
    for k, i in ((0, rows[280]), (1, rows[281])):
        j = i + 3 + 11 * (2 + k)  # the second/third orbital column of two rows
        edited[j : j + 11] = b"    -0.0123"
    (tmp_path / "vasprun.xml").write_bytes(bytes(edited))
    run = read_run(tmp_path, strict=False)
    full = read_run(tmp_path, pdos=True, strict=False)
    assert (full.pdos < 0).sum() == 2
    sums = open_partial(run).element_sums(run.species, 200, 320)
    el = run.species[2]
    mask = np.array(run.species) == el
    np.testing.assert_allclose(
        sums[el], full.pdos[mask][..., 200:320].sum(axis=(0, 2)), rtol=1e-12, atol=1e-12
    )


def test_emulated_level_windowed_equals_full_parse(emulated, capsys, monkeypatch):
    _no_full_parse(monkeypatch)
    code, report, err = _analyze([str(emulated)], capsys)
    assert code == 0, err
    monkeypatch.undo()
    got = report["runs"][0]["electronic"]["level_dos"]
    assert got is not None and got["character"]["W"] > 0.5
    full = read_run(emulated, pdos=True)
    ref = analyze_electronic(replace(full, files={}), dos_elements=["W", "O"]).level_dos
    for key in ("level", "cbm", "depth"):
        assert got[key] == pytest.approx(getattr(ref, key), rel=1e-12)
    assert got["character"] == pytest.approx(ref.character, rel=1e-12, abs=1e-15)
    # the gzipped copy (inflated up to </partial>) gives the same numbers
    gz = emulated.parent / "gz"
    gz.mkdir(exist_ok=True)
    for f in emulated.iterdir():
        if f.name == "vasprun.xml":
            (gz / "vasprun.xml.gz").write_bytes(gzip.compress(f.read_bytes()))
        elif f.is_file():
            shutil.copy(f, gz / f.name)
    code, report_gz, err = _analyze([str(gz)], capsys)
    assert code == 0, err
    assert report_gz["runs"][0]["electronic"]["level_dos"] == got


def _corrupt(corpus: Path, tmp: Path, edit) -> Path:
    src = corpus / FEO
    raw = gzip.open(src / "vasprun.xml.gz").read()
    tmp.mkdir()
    (tmp / "vasprun.xml").write_bytes(edit(raw))
    shutil.copy(src / "OUTCAR.gz", tmp)
    return tmp


def _edit_last_field(raw: bytes, ion: int, new) -> bytes:
    """``raw`` with the last number of ``ion``'s spin-1 row at the in-gap level (1.8686 eV)
    replaced by ``new(value)``."""
    at = raw.index(f'<set comment="ion {ion}">'.encode(), raw.index(b"<partial>"))
    i = raw.index(b"<r>     1.8686", at)
    j = raw.index(b"</r>", i)
    row = raw[i:j].rstrip()
    k = i + row.rindex(b" ") + 1  # where the last number starts
    return raw[:k] + new(float(row[k - i :])) + raw[j:]


def test_overflow_in_the_window_is_an_error(corpus_dir, tmp_path, capsys):
    def star(raw: bytes) -> bytes:
        return _edit_last_field(raw, 1, lambda v: b"******* ")  # Fortran overflow

    folder = _corrupt(corpus_dir, tmp_path / "star", star)
    code, _, err = _analyze([str(folder), "--cation", "Fe"], capsys)
    assert code == 2
    assert "non-finite or overflowed value" in err and "DOS projected on Fe+O" in err
    assert "vasprun.xml" in err and err.count("\n") == 1


def test_irregular_rows_fall_back_to_the_full_parse(corpus_dir, tmp_path, capsys):
    def exponent(raw: bytes) -> bytes:
        # the same value in another format: the rows are no longer fixed-width decimals
        return _edit_last_field(raw, 1, lambda v: f"{v:.6E} ".encode())

    ok = _analyze([str(corpus_dir / FEO), "--cation", "Fe"], capsys)
    folder = _corrupt(corpus_dir, tmp_path / "exp", exponent)
    code, report, err = _analyze([str(folder), "--cation", "Fe"], capsys)
    assert code == 0, err
    got = report["runs"][0]["electronic"]["level_dos"]
    want = ok[1]["runs"][0]["electronic"]["level_dos"]
    for key in ("level", "cbm", "depth"):
        assert got[key] == pytest.approx(want[key], rel=1e-12)
    assert got["character"] == pytest.approx(want["character"], rel=1e-12)


def test_a_set_with_a_row_missing_is_an_error(corpus_dir, tmp_path, capsys):
    def drop_row(raw: bytes) -> bytes:
        at = raw.index(b'<set comment="ion 2">', raw.index(b"<partial>"))
        i = raw.rindex(b"\n", 0, raw.index(b"<r>", at + 2000)) + 1
        return raw[:i] + raw[raw.index(b"\n", i) + 1 :]

    folder = _corrupt(corpus_dir, tmp_path / "rows", drop_row)
    code, _, err = _analyze([str(folder), "--cation", "Fe"], capsys)
    assert code == 2
    assert "unreadable projected DOS" in err and "<partial>" in err
