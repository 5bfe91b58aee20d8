"""A polaron that delocalises during the U ramp is detected, reported and never accepted.

The ramp runs through atomate2 with the mock-VASP emulator (``mock_vasp`` fixture); the
emulator's ``delocalise below_u=U`` fault spreads the dopant's electrons over every W below
that U, as a real SCAN+U run can do when U is lowered too far.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from polaronflow.errors import WorkflowError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def seeded():
    from polaronflow.structures.builder import build_doped

    return build_doped(ion="Mg", supercell=(2, 1, 1)).structure


def _maker(**kwargs):
    from polaronflow.workflows.campaign.ramp import URampMaker
    from polaronflow.workflows.vasp.sets import ScanUSetGenerator

    fast = {"kpoint_mesh": (1, 1, 1)}
    return URampMaker(
        name="mg",
        schedule=(9, 7, 5),
        relax_generator=ScanUSetGenerator(calc="relax", **fast),
        static_generator=ScanUSetGenerator(
            calc="static", user_incar_settings={"NEDOS": 301}, **fast
        ),
        **kwargs,
    )


def _run(flow, tmp_path: Path, monkeypatch):
    from jobflow import JobStore, run_locally
    from maggma.stores import MemoryStore

    monkeypatch.chdir(tmp_path)
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    responses = run_locally(flow, store=store, create_folders=True, log=False)
    store.connect()
    docs = {}
    for doc in store.query({}, properties=["name", "output", "index", "uuid"]):
        docs[doc["name"]] = doc
    return responses, docs


def _check(docs, name: str) -> dict:
    return docs[name]["output"]["additional_json"]["polaron_check"]


def test_localised_ramp_is_checked_at_every_step(mock_vasp, tmp_path, monkeypatch, seeded):
    flow = _maker().make(seeded)
    _, docs = _run(flow, tmp_path, monkeypatch)
    names = ["mg-ramp-u9", "mg-ramp-u7", "mg-ramp-u5", "mg-static"]
    assert mock_vasp.job_names == names
    for name in names:
        check = _check(docs, name)
        assert check["localised"] is True and check["action"] == "continue", check
        assert check["polaron_count"] == 2 and check["electrons_expected"] == 2
        assert min(abs(m) for m in check["polaron_moments"]) >= 0.3
        assert check["synthetic"] is True
        record = docs[name]["output"]["additional_json"]["polaronflow"]
        assert record["polaron_check"] is True
        assert record["reseed_on_delocalisation"] is False  # off by default, recorded


def test_delocalisation_stops_the_ramp_with_its_reason(mock_vasp, tmp_path, monkeypatch, seeded):
    # Below U = 8 eV no polaron forms: U = 9 is fine, U = 7 delocalises.
    mock_vasp.fault("mg-ramp", "delocalise below_u=8")
    flow = _maker().make(seeded)
    responses, docs = _run(flow, tmp_path, monkeypatch)
    # the ramp stopped after the step that delocalised: U = 5 and the static never ran
    assert mock_vasp.job_names == ["mg-ramp-u9", "mg-ramp-u7"]
    assert set(docs) == {"mg-ramp-u9", "mg-ramp-u7"}
    by_name = {job.name: job for job in flow.jobs}
    assert by_name["mg-ramp-u5"].uuid not in responses
    assert by_name["mg-static"].uuid not in responses
    assert responses[by_name["mg-ramp-u7"].uuid][1].stop_children is True
    check = _check(docs, "mg-ramp-u7")
    assert check["localised"] is False and check["action"] == "stop"
    assert check["polaron_count"] == 0 and "missing" in check["flags"]
    assert check["largest_other_moment"] < 0.3
    assert "delocalised" in check["reason"] and "ramp stopped" in check["reason"]
    assert "U = 7 eV" in check["reason"]
    assert _check(docs, "mg-ramp-u9")["localised"] is True


def test_reseed_retries_once_and_the_ramp_continues(
    mock_vasp, tmp_path, monkeypatch, seeded
) -> None:
    import atomate2.vasp.jobs.base as base
    from pymatgen.io.vasp import Incar

    from polaronflow.emulator.mock import _current_job_name

    emulated = base.run_vasp

    def run_vasp(*args, **kwargs):
        # A transient delocalisation: only the first attempt at U = 7 loses its polarons.
        if _current_job_name() == "mg-ramp-u7":
            Path("EMULATOR_FAULT").write_text("delocalise below_u=8\n")
        return emulated(*args, **kwargs)

    monkeypatch.setattr(base, "run_vasp", run_vasp)
    flow = _maker(reseed_on_delocalisation=True, reseed_stretch=0.02).make(seeded)
    _, docs = _run(flow, tmp_path, monkeypatch)
    assert mock_vasp.job_names == [
        "mg-ramp-u9",
        "mg-ramp-u7",
        "mg-ramp-u7-reseed",
        "mg-ramp-u5",
        "mg-static",
    ]
    first = _check(docs, "mg-ramp-u7")
    assert first["action"] == "reseed" and first["localised"] is False
    seeds = [i for i, m in enumerate(seeded.site_properties["magmom"]) if m]
    assert sorted(first["reseed_sites"]) == sorted(seeds)
    retry = _check(docs, "mg-ramp-u7-reseed")
    assert retry["localised"] is True and retry["attempt"] == 1
    retry_record = docs["mg-ramp-u7-reseed"]["output"]["additional_json"]["polaronflow"]
    assert retry_record["retry_of"] == "mg-ramp-u7" and retry_record["u"] == 7.0
    # the retry started from the seeds again (moment 1 on the original sites only)
    folders = dict(zip(mock_vasp.job_names, mock_vasp.runs, strict=True))
    incar = Incar.from_file(folders["mg-ramp-u7-reseed"] / "INCAR.gz")
    assert {i for i, m in enumerate(incar["MAGMOM"]) if abs(m) > 0.9} == set(seeds)
    assert sum(1 for m in incar["MAGMOM"] if m) == len(seeds)
    # the retry has the step's job id, so U = 5 continued from the retry's output
    assert docs["mg-ramp-u7-reseed"]["uuid"] == docs["mg-ramp-u7"]["uuid"]
    assert docs["mg-ramp-u7-reseed"]["index"] == docs["mg-ramp-u7"]["index"] + 1
    prev = docs["mg-ramp-u5"]["output"]["additional_json"]["polaronflow"]
    assert prev["reseed_on_delocalisation"] is True
    u5_incar = Incar.from_file(folders["mg-ramp-u5"] / "INCAR.gz")
    retry_moments = [
        s["properties"]["magmom"] for s in docs["mg-ramp-u7-reseed"]["output"]["structure"]["sites"]
    ]
    assert u5_incar["MAGMOM"] == pytest.approx(retry_moments, abs=1e-6)
    assert _check(docs, "mg-static")["localised"] is True


def test_a_retry_that_delocalises_again_stops_the_ramp(
    mock_vasp, tmp_path, monkeypatch, seeded
) -> None:
    mock_vasp.fault("mg-ramp", "delocalise below_u=8")
    flow = _maker(reseed_on_delocalisation=True).make(seeded)
    _, docs = _run(flow, tmp_path, monkeypatch)
    # retried exactly once, then stopped
    assert mock_vasp.job_names == ["mg-ramp-u9", "mg-ramp-u7", "mg-ramp-u7-reseed"]
    retry = _check(docs, "mg-ramp-u7-reseed")
    assert retry["action"] == "stop" and retry["attempt"] == 1
    assert "did not localise either" in retry["reason"]
    assert "mg-ramp-u5" not in docs and "mg-static" not in docs


def test_check_can_be_switched_off_and_settings_are_validated(seeded) -> None:
    from polaronflow.workflows.vasp.checks import PolaronCheckedVaspMaker

    on = _maker().make(seeded)
    assert all(isinstance(j.maker, PolaronCheckedVaspMaker) for j in on.jobs)
    assert on.jobs[0].maker.reseed_sites == [
        i for i, m in enumerate(seeded.site_properties["magmom"]) if m
    ]
    off = _maker(check_polarons=False).make(seeded)
    assert not any(isinstance(j.maker, PolaronCheckedVaspMaker) for j in off.jobs)
    for bad in ({"polaron_threshold": 0}, {"reseed_stretch": 0.5}, {"expected_polarons": -1}):
        with pytest.raises(WorkflowError):
            _maker(**bad)


def test_checked_ramp_survives_fireworks_serialisation(seeded) -> None:
    from fireworks import Workflow
    from jobflow.managers.fireworks import flow_to_workflow

    wf = flow_to_workflow(_maker(reseed_on_delocalisation=True, reseed_stretch=0.03).make(seeded))
    again = Workflow.from_dict(wf.to_dict())
    for fw in again.fws:
        job = fw.tasks[0]["job"]
        maker = job.function.__self__
        assert maker.reseed_on_delocalisation is True and maker.reseed_stretch == 0.03


def test_fireworks_defuses_the_rest_of_a_delocalised_ramp(
    mock_vasp, tmp_path, monkeypatch, seeded
) -> None:
    """Through FireWorks (embedded LaunchPad, rocket launcher) the stop defuses the children."""
    from fireworks import FWorker
    from fireworks.core.rocket_launcher import rapidfire
    from jobflow.managers.fireworks import flow_to_workflow

    from polaronflow.workflows.runtime.submit import embedded_jobstore, embedded_launchpad

    monkeypatch.chdir(tmp_path)
    mock_vasp.fault("mg-ramp", "delocalise below_u=8")
    flow = _maker().make(seeded)
    store = embedded_jobstore(tmp_path / "project")
    with embedded_launchpad(tmp_path / "project", timeout=30) as lp:
        lp.add_wf(flow_to_workflow(flow, store=store))
        rapidfire(lp, FWorker(), nlaunches=0, max_loops=1, sleep_time=0, strm_lvl="ERROR")
        states = {fw["name"]: fw["state"] for fw in lp.fireworks.find({}, {"name", "state"})}
    assert states["mg-ramp-u9"] == states["mg-ramp-u7"] == "COMPLETED"
    assert states["mg-ramp-u5"] == "DEFUSED"  # stopped by the check, never run
    assert states["mg-static"] == "WAITING"
    assert mock_vasp.job_names == ["mg-ramp-u9", "mg-ramp-u7"]
    store.connect()
    doc = store.query_one({"name": "mg-ramp-u7"}, properties=["output"])
    check = doc["output"]["additional_json"]["polaron_check"]
    assert check["action"] == "stop" and "delocalised" in check["reason"]


def test_fireworks_runs_the_reseeded_retry_as_a_detour(
    mock_vasp, tmp_path, monkeypatch, seeded
) -> None:
    import atomate2.vasp.jobs.base as base
    from fireworks import FWorker
    from fireworks.core.rocket_launcher import rapidfire
    from jobflow.managers.fireworks import flow_to_workflow

    from polaronflow.emulator.mock import _current_job_name
    from polaronflow.workflows.runtime.submit import embedded_jobstore, embedded_launchpad

    emulated = base.run_vasp

    def run_vasp(*args, **kwargs):
        if _current_job_name() == "mg-ramp-u7":  # transient: only the first attempt
            Path("EMULATOR_FAULT").write_text("delocalise below_u=8\n")
        return emulated(*args, **kwargs)

    monkeypatch.setattr(base, "run_vasp", run_vasp)
    monkeypatch.chdir(tmp_path)
    flow = _maker(reseed_on_delocalisation=True, with_static=False).make(seeded)
    store = embedded_jobstore(tmp_path / "project")
    with embedded_launchpad(tmp_path / "project", timeout=30) as lp:
        lp.add_wf(flow_to_workflow(flow, store=store))
        rapidfire(lp, FWorker(), nlaunches=0, max_loops=1, sleep_time=0, strm_lvl="ERROR")
        states = {fw["name"]: fw["state"] for fw in lp.fireworks.find({}, {"name", "state"})}
    assert states == dict.fromkeys(
        ["mg-ramp-u9", "mg-ramp-u7", "mg-ramp-u7-reseed", "mg-ramp-u5"], "COMPLETED"
    )
    assert mock_vasp.job_names == ["mg-ramp-u9", "mg-ramp-u7", "mg-ramp-u7-reseed", "mg-ramp-u5"]
    store.connect()
    u5 = store.query_one({"name": "mg-ramp-u5"}, properties=["output"])["output"]
    assert u5["additional_json"]["polaron_check"]["localised"] is True


@pytest.mark.parametrize("nupdown, u, localised", [(2, 9.0, True), (0, 9.0, True), (2, 6.0, False)])
def test_check_counts_polarons_of_either_spin(tmp_path, nupdown, u, localised) -> None:
    from polaronflow.emulator import run_emulator
    from polaronflow.emulator.jobs import reo3_cell, scan_u_incar, write_job
    from polaronflow.workflows.vasp.checks import check_run_polarons

    structure = reo3_cell(2, dopant="Mg")
    magmom = [0.0] * len(structure)
    magmom[2] = magmom[5] = 1.0
    incar = scan_u_incar(
        {"W": 8, "O": 24, "Mg": 1},
        MAGMOM=magmom,
        NSW=0,
        IBRION=-1,
        NUPDOWN=nupdown,
        LDAUU=[u, 0.0, 0.0],
        NEDOS=301,
    )
    write_job(tmp_path, structure, incar)
    (tmp_path / "EMULATOR_FAULT").write_text("delocalise below_u=7\n")
    run_emulator(tmp_path)
    check = check_run_polarons(tmp_path, job_name="x", u=u)
    assert check.localised is localised
    assert check.electrons_expected == 2
    if localised:
        assert sorted(check.polaron_sites) == [2, 5]
        signs = {m > 0 for m in check.polaron_moments}
        assert signs == ({True} if nupdown == 2 else {True, False})
    else:
        assert check.polaron_count == 0 and "delocalised" in check.flags
        assert "delocalised" in check.reason and "U = 6 eV" in check.reason
