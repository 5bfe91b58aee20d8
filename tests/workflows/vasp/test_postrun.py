"""The VASP job's post-run part: lean task document, analysis summary, gzip."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from polaronflow.workflows.vasp.postrun import (
    LEAN_KEY,
    SUMMARY_KEY,
    finish_vasp_job,
    gzip_outputs,
    lean_task_document,
    run_summary,
    slim_vasprun,
)

#: Differ between any two parses of one folder (or of two copies of it).
VOLATILE = {"last_updated", "dir_name", "build_date"}


@pytest.fixture(scope="module")
def lorbit_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small LORBIT = 11, ISPIN = 2 static (17 atoms, one Mg) written by the emulator."""
    from polaronflow.emulator import write_large_run

    return write_large_run(
        tmp_path_factory.mktemp("lorbit") / "run", natoms=17, nbands=48, nedos=301, nkpts=2
    )


def _copy(run: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(run, dest)
    return dest


def _diff(a: object, b: object, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key in VOLATILE:
                continue
            if key not in a or key not in b:
                out.append(f"{path}.{key}")
            else:
                out += _diff(a[key], b[key], f"{path}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [path]
        return [d for x, y in zip(a, b, strict=True) for d in _diff(x, y, path)]
    return [] if a == b else [path]


def test_lean_document_is_atomate2s_without_dos_properties(lorbit_run, tmp_path):
    from atomate2.utils.path import get_uri
    from atomate2.vasp.jobs.base import get_vasp_task_document

    run = _copy(lorbit_run, tmp_path)
    full = json.loads(get_vasp_task_document(run).model_dump_json())
    lean_doc = lean_task_document(run)
    lean = json.loads(lean_doc.model_dump_json())
    # the full parse has the element-projected DOS moments; the lean one has nothing else less
    assert full["calcs_reversed"][0]["output"]["dos_properties"]
    assert not lean["calcs_reversed"][0]["output"]["dos_properties"]
    diffs = [d for d in _diff(full, lean) if ".dos_properties" not in d]
    assert diffs == []
    assert lean_doc.dir_name == get_uri(run.resolve())
    assert lean_doc.calcs_reversed[0].dir_name == str(run.resolve())
    assert "polaronflow-taskdoc-" not in lean_doc.model_dump_json()  # no temporary path left
    assert lean_doc.calcs_reversed[0].output.efermi is not None
    # the run folder itself is untouched
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in lorbit_run.iterdir())


def test_full_parse_on_request(lorbit_run, tmp_path):
    run = _copy(lorbit_run, tmp_path)
    doc = lean_task_document(run, **{LEAN_KEY: False})
    assert doc.calcs_reversed[0].output.dos_properties


def test_slim_copy_drops_the_projections_plain_and_gzipped(lorbit_run, tmp_path):
    from pymatgen.io.vasp import Vasprun

    src = lorbit_run / "vasprun.xml"
    gz = tmp_path / "vasprun.xml.gz"
    with open(src, "rb") as fi, gzip.open(gz, "wb") as fo:
        shutil.copyfileobj(fi, fo)
    plain_out, gz_out = tmp_path / "a.xml", tmp_path / "b.xml"
    assert slim_vasprun(src, plain_out) and slim_vasprun(gz, gz_out)
    full = Vasprun(str(src), parse_potcar_file=False)
    for out in (plain_out, gz_out):
        text = out.read_bytes()
        assert b"<partial>" not in text
        # <projected> keeps only its leading eigenvalues; no per-ion arrays anywhere
        assert text.count(b"<projected>") == 1
        assert b'dim="3">ion<' not in text and b'dim="4">spin<' not in text
        assert len(text) < src.stat().st_size / 2
        slim = Vasprun(str(out), parse_potcar_file=False)
        assert slim.final_energy == full.final_energy and slim.efermi == full.efermi
        assert slim.eigenvalue_band_properties == full.eigenvalue_band_properties
        assert not slim.pdos and full.pdos


def test_slim_copy_refuses_a_truncated_file(lorbit_run, tmp_path):
    cut = tmp_path / "vasprun.xml"
    data = (lorbit_run / "vasprun.xml").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert slim_vasprun(cut, tmp_path / "out.xml") is False
    assert not (tmp_path / "out.xml").exists()


def test_summary_holds_the_polarons_and_never_raises(lorbit_run, tmp_path):
    summary = run_summary(lorbit_run)
    assert summary["polarons"]["polaron_count"] >= 1
    assert summary["electronic"] is not None and summary["synthetic"] is True
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "vasprun.xml").write_text("not xml")
    broken_summary = run_summary(broken)  # says what is wrong instead of raising
    assert broken_summary.get("error") or broken_summary.get("problems")


def test_gzip_outputs_matches_atomate2s_selection(lorbit_run, tmp_path):
    run = _copy(lorbit_run, tmp_path)
    (run / "notes.txt").write_text("kept as is")  # not in atomate2's list
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    stamp = (run / "vasprun.xml").stat().st_mtime
    gzip_outputs(run, "atomate")
    for name in ("vasprun.xml", "OUTCAR", "INCAR", "CONTCAR", "POSCAR", "KPOINTS", "OSZICAR"):
        assert not (run / name).exists()
        assert gzip.decompress((run / f"{name}.gz").read_bytes()) == before[name]
    assert (run / "notes.txt").read_text() == "kept as is"
    assert (run / "vasprun.xml.gz").stat().st_mtime == stamp


def test_finish_vasp_job_stores_the_summary(lorbit_run, tmp_path):
    from polaronflow.workflows.vasp.makers import ScanUStaticMaker

    run = _copy(lorbit_run, tmp_path)
    response = finish_vasp_job(ScanUStaticMaker(name="mg-static"), run)
    doc = response.output
    assert doc.task_label == "mg-static"
    assert doc.additional_json[SUMMARY_KEY]["polarons"]["polaron_count"] >= 1
    assert (run / "vasprun.xml.gz").is_file() and not (run / "vasprun.xml").exists()
