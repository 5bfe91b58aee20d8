"""Injected faults: custodian really runs the emulator as VASP and fixes what it can."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from polaronflow.emulator import run_emulator
from polaronflow.emulator.jobs import reo3_cell, scan_u_incar, write_job
from polaronflow.errors import InputError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _job(folder: Path, fault: str | None, **incar) -> Path:
    structure = reo3_cell(2, dopant="Mg")
    magmom = [0.0] * len(structure)
    magmom[2] = magmom[5] = 1.0
    settings = {"MAGMOM": magmom, "NSW": 30, "IBRION": 2, "ISIF": 3, **incar}
    write_job(folder, structure, scan_u_incar({"W": 8, "O": 24, "Mg": 1}, **settings))
    if fault:
        (folder / "EMULATOR_FAULT").write_text(fault + "\n")
    return folder


def _custodian(folder: Path):
    from custodian import Custodian
    from custodian.vasp.handlers import UnconvergedErrorHandler, VaspErrorHandler
    from custodian.vasp.jobs import VaspJob
    from custodian.vasp.validators import VaspFilesValidator, VasprunXMLValidator

    job = VaspJob([sys.executable, "-m", "polaronflow.emulator"], auto_npar=False)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return Custodian(
            [VaspErrorHandler(), UnconvergedErrorHandler()],
            [job],
            validators=[VasprunXMLValidator(), VaspFilesValidator()],
            max_errors=3,
            polling_time_step=0.1,
            monitor_freq=1,
        ).run()
    finally:
        os.chdir(cwd)


def _errors(folder: Path) -> list[str]:
    record = json.loads((folder / "custodian.json").read_text())
    return [err for run in record for c in run["corrections"] for err in c["errors"]]


@pytest.mark.parametrize(
    "fault, error", [("zbrent", "zbrent"), ("edddav", "edddav"), ("unconverged", "Unconverged")]
)
def test_custodian_fixes_fixable_faults(tmp_path: Path, fault: str, error: str) -> None:
    from pymatgen.io.vasp import Vasprun

    folder = _job(tmp_path, fault)
    _custodian(folder)
    assert _errors(folder) == [error]
    vr = Vasprun(folder / "vasprun.xml", parse_potcar_file=False, parse_dos=False)
    assert vr.converged


def test_a_persistent_fault_fails_with_its_reason(tmp_path: Path) -> None:
    from custodian.custodian import MaxCorrectionsPerJobError

    folder = _job(tmp_path, "unconverged persistent=true")
    with pytest.raises(MaxCorrectionsPerJobError):
        _custodian(folder)
    assert set(_errors(folder)) == {"Unconverged"}


def test_truncated_vasprun_fails_validation_and_is_never_converged(tmp_path: Path) -> None:
    from custodian.custodian import ValidationError
    from pymatgen.io.vasp import Vasprun

    folder = _job(tmp_path, "truncated")
    with pytest.raises(ValidationError, match="VasprunXMLValidator"):
        _custodian(folder)
    text = (folder / "vasprun.xml").read_text()
    assert "</modeling>" not in text
    assert "General timing" not in (folder / "OUTCAR").read_text()
    with pytest.raises(Exception):  # noqa: B017 - lxml/ET parse errors differ by backend
        Vasprun(folder / "vasprun.xml", parse_potcar_file=False)


def test_polarons_delocalise_below_threshold_u(tmp_path: Path) -> None:
    from pymatgen.io.vasp import Outcar

    moments = {}
    for u in (9.0, 6.0):
        folder = _job(
            tmp_path / f"u{u:g}", "delocalise below_u=7", NSW=0, IBRION=-1, LDAUU=[u, 0.0, 0.0]
        )
        run_emulator(folder)
        moments[u] = np.array([m["tot"] for m in Outcar(folder / "OUTCAR").magnetization])
    assert moments[9.0].max() > 0.5
    assert moments[6.0].max() < 0.1
    assert moments[6.0].sum() > 0  # the two electrons are still there, spread out


def test_bad_fault_file_is_an_input_error(tmp_path: Path) -> None:
    folder = _job(tmp_path, "meltdown")
    with pytest.raises(InputError, match="invalid fault"):
        run_emulator(folder)


def _vasprun_ok(folder: Path) -> bool:
    from pymatgen.io.vasp import Vasprun

    return Vasprun(folder / "vasprun.xml", parse_potcar_file=False, parse_dos=False).converged


@pytest.mark.parametrize(
    "fault, incar, key, value",
    [
        ("grad_not_orth", {}, "ALGO", None),  # ALGO = All: custodian moves off it
        ("zheev", {"ALGO": "Normal"}, "ALGO", "All"),
        ("brmix", {}, "ISTART", 1),  # first try: rerun continuing (OUTCAR readable)
        ("too_few_bands", {"NBANDS": 200}, "NBANDS", 220),
    ],
)
def test_custodian_detects_and_corrects_the_new_faults(
    tmp_path: Path, fault: str, incar: dict, key: str, value
) -> None:
    from pymatgen.io.vasp import Incar

    folder = _job(tmp_path, fault, **incar)
    before = Incar.from_file(folder / "INCAR")
    _custodian(folder)
    assert _errors(folder) == [fault]
    after = Incar.from_file(folder / "INCAR")
    if value is None:
        assert after[key] != before[key]
    else:
        assert after[key] == value
    assert _vasprun_ok(folder)


def test_zheev_with_algo_all_leaves_custodian_nothing_to_try(tmp_path: Path) -> None:
    from custodian.custodian import NonRecoverableError

    folder = _job(tmp_path, "zheev")  # scan_u_incar uses ALGO = All
    with pytest.raises(NonRecoverableError):
        _custodian(folder)
    assert "ERROR EDDIAG: Call to routine ZHEEV failed!" in (folder / "OUTCAR").read_text()
    assert (folder / "CONTCAR").read_text() == ""  # died in the first ionic step


def test_too_few_bands_in_the_incar_is_a_real_fault(tmp_path: Path) -> None:
    # 33-atom Mg cell: 8*14 + 24*6 + 8 = 264 electrons, 133 bands per spin are occupied
    folder = _job(tmp_path, None, NBANDS=125)
    _custodian(folder)
    # custodian raises NBANDS by 10 % until the electrons fit: 125 -> 137
    assert _errors(folder) == ["too_few_bands"]
    assert _vasprun_ok(folder)


@pytest.mark.parametrize("fault", ["edddav", "zbrent", "kill", "grad_not_orth"])
def test_a_stopped_run_is_cut_where_it_stopped(tmp_path: Path, fault: str) -> None:
    from pymatgen.io.vasp import Oszicar, Poscar

    folder = _job(tmp_path, fault)
    run = run_emulator(folder)
    stdout = run.notes[-1]
    vasprun = (folder / "vasprun.xml").read_text()
    assert "</modeling>" not in vasprun
    outcar = (folder / "OUTCAR").read_text()
    assert "General timing" not in outcar
    assert not (folder / "WAVECAR").exists() and not (folder / "CHGCAR").exists()
    full = len(run.steps)
    osz = (folder / "OSZICAR").read_text()
    done = osz.count(" F= ")
    assert done < full  # the OSZICAR stops with the run
    contcar = (folder / "CONTCAR").read_text()
    if done == 0:
        assert contcar == ""  # VASP's CONTCAR is empty until an ionic step completes
    else:
        # the CONTCAR is the last completed ionic step's structure, not the relaxed one
        written = Poscar.from_file(folder / "CONTCAR").structure.frac_coords
        assert np.allclose(written, run.steps[done - 1].frac_coords, atol=1e-8)
        assert not np.allclose(written, run.steps[-1].frac_coords, atol=1e-8)
        assert len(Oszicar(folder / "OSZICAR").ionic_steps) == done
    assert vasprun.count("<calculation>") == done + 1
    if fault == "kill":
        assert "Error" not in stdout and "ERROR" not in stdout
    else:
        from polaronflow.emulator.faults import ERROR_TEXT

        assert ERROR_TEXT[fault].splitlines()[0] in stdout


def test_a_kill_fails_validation_and_custodian_gives_up(tmp_path: Path) -> None:
    from custodian.custodian import ValidationError

    folder = _job(tmp_path, "kill")
    with pytest.raises(ValidationError, match="VasprunXMLValidator"):
        _custodian(folder)
    assert _errors(folder) == []


def test_fault_position_can_be_chosen(tmp_path: Path) -> None:
    folder = _job(tmp_path, "kill ionic_step=3 scf_step=5")
    run_emulator(folder)
    osz = (folder / "OSZICAR").read_text().splitlines()
    assert sum(" F= " in line for line in osz) == 2
    assert osz[-1].split(":")[1].split()[0] == "5"  # five SCF steps of the third ionic step


def test_truncate_is_accepted_for_truncated(tmp_path: Path) -> None:
    folder = _job(tmp_path, "truncate", NSW=0, IBRION=-1)
    run_emulator(folder)
    assert "</modeling>" not in (folder / "vasprun.xml").read_text()
    # every ionic step was done: the OSZICAR is complete, the CONTCAR written
    assert (folder / "OSZICAR").read_text().count(" F= ") == 1
    assert (folder / "CONTCAR").read_text()
