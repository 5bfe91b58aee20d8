"""VASP failures through custodian: fixed when fixable, a stopped branch with its reason if not.

The Flow is the campaign ``polaronflow submit`` builds (small: Mg only, 2x1x1 supercell,
U 9 -> 5, fast k-points, no references). Every job runs atomate2's real ``run_vasp``
(custodian with polaronflow's handler set and validators from
``polaronflow.workflows.vasp.handlers``) with the mock-VASP emulator as the VASP command
(``mock_vasp.mode = "custodian"``); the emulator's fault injection decides the failure.
"""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _read(folder: Path, name: str) -> str:
    gz = folder / f"{name}.gz"
    return gzip.open(gz, "rt").read() if gz.exists() else (folder / name).read_text()


def _flow(tmp_path: Path):
    from polaronflow.emulator.fast import fast_parameters_file
    from polaronflow.workflows.campaign.maker import build_campaign

    return build_campaign(
        ions=["Mg"],
        supercell=(2, 1, 1),
        references=False,
        schedule=(9, 5),
        parameters_file=fast_parameters_file(tmp_path / "fast_parameters.yaml"),
    )


def _ramp(mock_vasp) -> list[str]:
    return [n for n in mock_vasp.job_names if n.startswith("mg-")]


def _folder(mock_vasp, name: str) -> Path:
    return dict(zip(mock_vasp.job_names, mock_vasp.runs, strict=True))[name]


def _run(flow, tmp_path: Path, monkeypatch):
    from jobflow import JobStore, run_locally
    from maggma.stores import MemoryStore

    monkeypatch.chdir(tmp_path)
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    responses = run_locally(flow, store=store, create_folders=True, log=True)
    store.connect()
    docs = {d["name"]: d for d in store.query({}, properties=["name", "output"])}
    return responses, docs


def test_handler_set_is_the_one_custodian_runs(tmp_path) -> None:
    from atomate2.vasp.jobs.base import BaseVaspMaker

    from polaronflow.workflows.vasp.handlers import EXCLUDED_HANDLERS

    vasp_jobs = [j for j, _ in _flow(tmp_path).iterflow() if isinstance(j.maker, BaseVaspMaker)]
    assert len(vasp_jobs) == 6  # unit cell, supercell relax + static, 2 ramp steps, static
    for job in vasp_jobs:
        kwargs = job.maker.run_vasp_kwargs
        names = {type(h).__name__ for h in kwargs["handlers"]}
        assert "VaspErrorHandler" in names and not names & set(EXCLUDED_HANDLERS)
        assert {type(v).__name__ for v in kwargs["validators"]} >= {"VasprunXMLValidator"}


@pytest.mark.parametrize("fault", ["zbrent", "edddav"])
def test_fixable_error_is_corrected_and_recorded(mock_vasp, tmp_path, monkeypatch, fault) -> None:
    from pymatgen.io.vasp import Incar

    mock_vasp.mode = "custodian"
    mock_vasp.fault("mg-ramp-u9", fault)
    flow = _flow(tmp_path)
    _, docs = _run(flow, tmp_path, monkeypatch)
    # the corrected job completed and the ramp went on
    assert _ramp(mock_vasp) == ["mg-ramp-u9", "mg-ramp-u5", "mg-static"]
    out = docs["mg-ramp-u9"]["output"]
    assert out["state"] == "successful"
    corrections = out["custodian"][0]["corrections"]
    assert [c["errors"] for c in corrections] == [[fault]]
    actions = corrections[0]["actions"]
    assert actions, "custodian recorded no action"
    # the fix is in the INCAR the successful rerun used
    folder = _folder(mock_vasp, "mg-ramp-u9")
    incar = Incar.from_str(_read(folder, "INCAR"))
    incar_sets = [a["action"]["_set"] for a in actions if a.get("dict") == "INCAR"]
    for change in incar_sets:
        for key, value in change.items():
            assert incar[key] == value, key
    if fault == "zbrent":
        assert {"file": "CONTCAR", "action": {"_file_copy": {"dest": "POSCAR"}}} in actions
        assert incar["EDIFF"] <= 1e-6
    # custodian's own record in the run folder says the same
    record = json.loads(_read(folder, "custodian.json"))
    assert [e for run in record for c in run["corrections"] for e in c["errors"]] == [fault]
    # the emulator's fault cleared because the inputs changed (not because it was switched off)
    assert json.loads((folder / ".emulator_faults.json").read_text())[fault]
    assert "General timing" in _read(folder, "OUTCAR")
    assert docs["mg-ramp-u5"]["output"]["state"] == "successful"


def _failure_log(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if "failed with exception" in r.msg)


def test_unfixable_error_stops_the_branch_with_its_reason(
    mock_vasp, tmp_path, monkeypatch, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="jobflow")
    mock_vasp.mode = "custodian"
    mock_vasp.fault("mg-ramp-u9", "unconverged persistent=true")
    flow = _flow(tmp_path)
    _, docs = _run(flow, tmp_path, monkeypatch)
    # the failing job has no output and its children never ran
    assert not {"mg-ramp-u9", "mg-ramp-u5", "mg-static"} & set(docs)
    assert _ramp(mock_vasp) == ["mg-ramp-u9"]
    # the analysis job still ran and says what is missing
    missing = docs["campaign-analysis"]["output"]["missing_reasons"]
    assert "did not finish" in missing["mg-static"]
    # the reason: custodian gave up after its corrections, each recorded
    log = _failure_log(caplog)
    assert "mg-ramp-u9 failed with exception" in log
    assert "MaxCorrectionsPerJobError" in log, log
    folder = _folder(mock_vasp, "mg-ramp-u9")
    record = json.loads(_read(folder, "custodian.json"))
    errors = [e for run in record for c in run["corrections"] for e in c["errors"]]
    assert errors and set(errors) <= {"Unconverged", "NonConverging"}, errors
    # several different corrections were tried before giving up
    assert len(errors) >= 2


def test_truncated_vasprun_is_never_reported_converged(
    mock_vasp, tmp_path, monkeypatch, caplog
) -> None:
    from polaronflow.analysis.readers import read_run
    from polaronflow.errors import RunReadError

    caplog.set_level(logging.INFO, logger="jobflow")
    mock_vasp.mode = "custodian"
    mock_vasp.fault("mg-ramp-u9", "truncated")
    flow = _flow(tmp_path)
    _, docs = _run(flow, tmp_path, monkeypatch)
    assert not {"mg-ramp-u9", "mg-ramp-u5", "mg-static"} & set(docs)
    assert "VasprunXMLValidator" in _failure_log(caplog)
    folder = _folder(mock_vasp, "mg-ramp-u9")
    assert "</modeling>" not in _read(folder, "vasprun.xml")
    with pytest.raises(RunReadError):
        read_run(folder)
    partial = read_run(folder, strict=False)
    assert partial.converged is False and partial.problems
