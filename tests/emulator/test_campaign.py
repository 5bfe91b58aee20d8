"""End to end: the campaign's jobs run under the ``mock_vasp`` fixture and chain correctly."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import numpy as np
import pytest

from polaronflow.analysis.rundata import SYNTHETIC_MARKER

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _text(folder: Path, name: str) -> str:
    path = folder / name
    if path.is_file():
        return path.read_text()
    return gzip.open(folder / f"{name}.gz", "rt").read()


def test_mock_vasp_fixture_is_registered(pytestconfig) -> None:
    assert pytestconfig.pluginmanager.hasplugin("polaronflow")


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """Run the Mg campaign (2x1x1 supercell, fast parameters) once, in-process."""
    from jobflow import JobStore, run_locally
    from maggma.stores import MemoryStore

    from polaronflow.emulator.fast import fast_parameters_file
    from polaronflow.emulator.mock import MockVasp, install
    from polaronflow.workflows.campaign.maker import build_campaign

    root = tmp_path_factory.mktemp("campaign")
    mp = pytest.MonkeyPatch()
    state = MockVasp()
    install(mp, state)
    try:
        flow = build_campaign(
            ions=["Mg"],
            supercell=(2, 1, 1),
            potcar_spec=True,
            parameters_file=fast_parameters_file(root / "fast.yaml"),
        )
        store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
        with mp.context() as m:
            m.chdir(root)
            responses = run_locally(
                flow, store=store, create_folders=True, log=False, ensure_success=False
            )
    finally:
        mp.undo()
    return flow, responses, store, state


def test_every_job_completes_and_taskdocs_parse(campaign) -> None:
    _flow, responses, store, state = campaign
    store.connect()
    # Dynamic jobs (k-point convergence) add jobs at run time: check every job that ran.
    assert responses and all(
        resp[1].output is not None or resp[1].replace is not None for resp in responses.values()
    )
    names = set(state.job_names)
    for expected in (
        "wo3-unit-relax",
        "wo3-supercell-relax",
        "wo3-supercell-static",
        "mg-ramp-u9",
        "mg-ramp-u5",
        "mg-static",
        "ref-MgO-relax",
        "ref-O2-relax",
    ):
        assert expected in names
    docs = list(store.query({"name": {"$in": sorted(names)}}, properties=["name", "output"]))
    vasp_docs = [d for d in docs if isinstance(d["output"], dict) and "task_label" in d["output"]]
    assert len(vasp_docs) >= len(names) - 2
    for doc in vasp_docs:
        assert doc["output"]["state"] == "successful", doc["name"]
        assert doc["output"]["output"]["energy"] < 0
    for folder in state.runs:
        assert SYNTHETIC_MARKER in _text(folder, "OUTCAR")[:200]


def test_ramp_chains_structures_and_moments(campaign) -> None:
    from pymatgen.io.vasp import Incar, Outcar, Poscar

    _, _, _, state = campaign
    folders = dict(zip(state.job_names, state.runs, strict=True))
    schedule = [9, 8, 7, 6, 5]
    for u_prev, u_next in itertools.pairwise(schedule):
        prev, nxt = folders[f"mg-ramp-u{u_prev}"], folders[f"mg-ramp-u{u_next}"]
        incar = Incar.from_str(_text(nxt, "INCAR"))
        assert incar["LDAUU"][0] == pytest.approx(u_next)
        tmp = prev / "_outcar_check"
        tmp.write_text(_text(prev, "OUTCAR"))
        moments = np.array([m["tot"] for m in Outcar(tmp).magnetization])
        # The next step starts from the previous step's moments ...
        assert np.allclose(incar["MAGMOM"], moments, atol=1e-3)
        # ... and from its relaxed structure.
        before = Poscar.from_str(_text(prev, "CONTCAR")).structure
        after = Poscar.from_str(_text(nxt, "POSCAR")).structure
        assert np.allclose(before.lattice.matrix, after.lattice.matrix, atol=1e-5)
        assert np.allclose(before.frac_coords, after.frac_coords, atol=1e-5)
        # The WAVECAR is handed on.
        assert any(p.name.startswith("WAVECAR") for p in nxt.iterdir())
    final = Outcar(_write(folders["mg-ramp-u5"], "OUTCAR"))
    moments = np.array([m["tot"] for m in final.magnetization])
    assert (moments > 0.4).sum() == 2  # two localised polarons at the end of the ramp


def _write(folder: Path, name: str) -> Path:
    path = folder / f"_{name}_check"
    path.write_text(_text(folder, name))
    return path


def test_fixture_custodian_mode_runs_a_job_with_a_correction(
    mock_vasp, tmp_path: Path, monkeypatch
) -> None:
    from atomate2.vasp.jobs.core import StaticMaker
    from jobflow import run_locally

    from polaronflow.emulator.jobs import reo3_cell

    mock_vasp.mode = "custodian"
    mock_vasp.fault("static", "unconverged")
    maker = StaticMaker()
    maker.input_set_generator.user_incar_settings.update(
        {"LDAUU": {"W": 5.0}, "LORBIT": 11, "NEDOS": 301}
    )
    monkeypatch.chdir(tmp_path)
    job = maker.make(reo3_cell(2, dopant=None))
    responses = run_locally(job, create_folders=True, ensure_success=True, log=False)
    doc = responses[job.uuid][1].output
    assert str(doc.state.value if hasattr(doc.state, "value") else doc.state) == "successful"
    corrections = doc.custodian[0].corrections
    assert [c["errors"] for c in corrections] == [["Unconverged"]]
    assert mock_vasp.runs == [Path(doc.dir_name.split(":", 1)[-1])]
