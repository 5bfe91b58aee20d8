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
