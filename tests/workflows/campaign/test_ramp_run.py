"""A U ramp actually run (mock-VASP emulator through atomate2): hand-offs and records.

The emulator's outputs are synthetic; this checks what the workflow does with them: each step
reads the previous WAVECAR and the previous run's site moments, and every task document
records the schedule and its own U.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest


def _read(path: Path) -> str:
    gz = path.with_name(path.name + ".gz")
    if gz.exists():
        return gzip.open(gz, "rt").read()
    return path.read_text()


@pytest.fixture
def seeded_small():
    from polaronflow.structures.builder import build_doped

    return build_doped(ion="Mg", supercell=(2, 1, 1)).structure


def test_ramp_runs_and_hands_on(mock_vasp, tmp_path, monkeypatch, seeded_small):
    import atomate2.vasp.jobs.base as base
    from jobflow import JobStore, run_locally
    from maggma.stores import MemoryStore
    from pymatgen.io.vasp import Incar

    from polaronflow.workflows.campaign.ramp import URampMaker
    from polaronflow.workflows.vasp.sets import ScanUSetGenerator

    monkeypatch.chdir(tmp_path)
    # what was in the job folder when VASP (the emulator) started
    wavecar_at_start: list[bool] = []
    emulated = base.run_vasp

    def run_vasp(*args, **kwargs):
        wavecar_at_start.append(Path("WAVECAR").is_file())
        return emulated(*args, **kwargs)

    monkeypatch.setattr(base, "run_vasp", run_vasp)
    fast = {"kpoint_mesh": (1, 1, 1)}
    maker = URampMaker(
        name="mg",
        schedule=(9, 7, 5),
        relax_generator=ScanUSetGenerator(calc="relax", **fast),
        static_generator=ScanUSetGenerator(
            calc="static", user_incar_settings={"NEDOS": 301}, **fast
        ),
    )
    flow = maker.make(seeded_small)
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    run_locally(flow, store=store, create_folders=True, ensure_success=True, log=False)
    assert mock_vasp.job_names == ["mg-ramp-u9", "mg-ramp-u7", "mg-ramp-u5", "mg-static"]
    runs = mock_vasp.runs
    seeds = {i for i, m in enumerate(seeded_small.site_properties["magmom"]) if m}

    docs = {}
    for job in flow.jobs:
        docs[job.name] = store.get_output(job.uuid)
    for k, (name, run) in enumerate(zip(mock_vasp.job_names, runs, strict=True)):
        incar = Incar.from_str(_read(run / "INCAR"))
        doc = docs[name]
        rec = doc["additional_json"]["polaronflow"]
        assert rec["job_name"] == name
        assert rec["u_schedule"] == [9.0, 7.0, 5.0]
        assert max(incar["LDAUU"]) == rec["u"] == [9.0, 7.0, 5.0, 5.0][k]
        magmom = incar["MAGMOM"]
        # WAVECAR of the previous step copied in before VASP starts
        assert wavecar_at_start[k] is (k > 0)
        if k == 0:
            assert {i for i, m in enumerate(magmom) if m} == seeds
        else:
            # moments are the previous run's output moments, not the seeds
            prev = docs[mock_vasp.job_names[k - 1]]
            prev_moments = prev["output"]["structure"]["sites"]
            carried = [site["properties"]["magmom"] for site in prev_moments]
            assert magmom == pytest.approx(carried, abs=1e-6)
            assert set(magmom) != {0.0, 1.0}  # not the seeds again
    assert Incar.from_str(_read(runs[1] / "INCAR"))["ISIF"] == 2
    assert Incar.from_str(_read(runs[2] / "INCAR"))["ISIF"] == 3
    static = Incar.from_str(_read(runs[3] / "INCAR"))
    assert static["NSW"] == 0 and static["LORBIT"] == 11 and static["LCHARG"] is True
