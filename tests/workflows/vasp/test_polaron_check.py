"""A polaron that delocalises during the U ramp is detected, reported and never accepted.

Every test runs the campaign Flow that ``polaronflow submit`` builds
(:func:`~polaronflow.workflows.campaign.maker.build_campaign`), small (Mg only, a 2x1x1
supercell, U 9 -> 7 -> 5, fast k-points), through atomate2 with the mock-VASP emulator
(``mock_vasp`` fixture); the emulator's ``delocalise below_u=U`` fault spreads the dopant's
electrons over every W below that U, as a real SCAN+U run can do when U is lowered too far.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from polaronflow.errors import WorkflowError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


SMALL = {"ions": ["Mg"], "supercell": (2, 1, 1), "references": False, "schedule": (9, 7, 5)}
RAMP = ["mg-ramp-u9", "mg-ramp-u7", "mg-ramp-u5", "mg-static"]
# the unit cell moves from the experimental start, so it is relaxed once more from its CONTCAR
# (the emulator lands on its relaxed cell at once: the second relaxation changes nothing)
PRISTINE = ["wo3-unit-relax", "wo3-unit-relax-2", "wo3-supercell-relax", "wo3-supercell-static"]


def _campaign(tmp_path: Path, **changes):
    """The campaign Flow of ``polaronflow submit`` for SMALL (+ changes), fast parameters."""
    from polaronflow.emulator.fast import fast_parameters_file
    from polaronflow.workflows.campaign.maker import build_campaign

    params = fast_parameters_file(tmp_path / "fast_parameters.yaml")
    return build_campaign(**(SMALL | {"parameters_file": params} | changes))


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


def _skipped(docs, name: str) -> bool:
    return docs[name]["output"]["additional_json"].get("skipped", False)


def _ramp_jobs(mock_vasp) -> list[str]:
    return [n for n in mock_vasp.job_names if n.startswith("mg-")]


def _wavecar_at_start(monkeypatch) -> dict[str, bool]:
    """Record, per job, whether a WAVECAR lay in the run folder when VASP started."""
    import atomate2.vasp.jobs.base as base

    from polaronflow.emulator.mock import _current_job_name

    seen: dict[str, bool] = {}
    emulated = base.run_vasp

    def run_vasp(*args, **kwargs):
        seen[_current_job_name()] = Path("WAVECAR").exists()
        return emulated(*args, **kwargs)

    monkeypatch.setattr(base, "run_vasp", run_vasp)
    return seen


def _transient_fault_at(monkeypatch, job_name: str) -> None:
    """Delocalise only the first attempt of ``job_name`` (its retry localises)."""
    import atomate2.vasp.jobs.base as base

    from polaronflow.emulator.mock import _current_job_name

    emulated = base.run_vasp

    def run_vasp(*args, **kwargs):
        if _current_job_name() == job_name:
            Path("EMULATOR_FAULT").write_text("delocalise below_u=8\n")
        return emulated(*args, **kwargs)

    monkeypatch.setattr(base, "run_vasp", run_vasp)


def _incar(mock_vasp, name: str):
    from pymatgen.io.vasp import Incar

    folders = dict(zip(mock_vasp.job_names, mock_vasp.runs, strict=True))
    return Incar.from_file(folders[name] / "INCAR.gz")


def test_localised_ramp_is_checked_at_every_step(mock_vasp, tmp_path, monkeypatch):
    flow = _campaign(tmp_path)
    _, docs = _run(flow, tmp_path, monkeypatch)
    assert mock_vasp.job_names == [*PRISTINE, *RAMP]
    for name in RAMP:
        check = _check(docs, name)
        assert check["localised"] is True and check["action"] == "continue", check
        assert check["polaron_count"] == 2 and check["electrons_expected"] == 2
        assert min(abs(m) for m in check["polaron_moments"]) >= 0.3
        assert check["synthetic"] is True
        record = docs[name]["output"]["additional_json"]["polaronflow"]
        assert record["polaron_check"] is True
        assert record["reseed_on_delocalisation"] is False  # off by default, recorded
    for name in PRISTINE:  # no dopant electrons to check on the pristine host
        assert "polaron_check" not in docs[name]["output"]["additional_json"]
    analysis = docs["campaign-analysis"]["output"]
    assert analysis["missing"] == [] and "mg-static" in analysis["runs"]


def test_delocalisation_stops_the_ramp_and_the_analysis_says_why(mock_vasp, tmp_path, monkeypatch):
    # Below U = 8 eV no polaron forms: U = 9 is fine, U = 7 delocalises.
    mock_vasp.fault("mg-ramp", "delocalise below_u=8")
    flow = _campaign(tmp_path)
    _, docs = _run(flow, tmp_path, monkeypatch)
    # VASP ran up to the step that delocalised; U = 5 and the static ran no VASP
    assert _ramp_jobs(mock_vasp) == ["mg-ramp-u9", "mg-ramp-u7"]
    check = _check(docs, "mg-ramp-u7")
    assert check["localised"] is False and check["action"] == "stop"
    assert check["polaron_count"] == 0 and "missing" in check["flags"]
    assert check["largest_other_moment"] < 0.3
    assert "delocalised" in check["reason"] and "ramp stopped" in check["reason"]
    assert "U = 7 eV" in check["reason"]
    assert _check(docs, "mg-ramp-u9")["localised"] is True
    for name in ("mg-ramp-u5", "mg-static"):
        skipped = _check(docs, name)
        assert _skipped(docs, name) is True
        assert skipped["action"] == "skipped" and skipped["stopped_at"] == "mg-ramp-u7"
        assert "delocalised" in skipped["stop_reason"]
    # the analysis job always runs: it reports the pristine runs and says why mg-static is
    # missing
    analysis = docs["campaign-analysis"]["output"]
    assert "wo3-supercell-static" in analysis["runs"]
    assert analysis["missing"] == ["mg-static"]
    reason = analysis["missing_reasons"]["mg-static"]
    assert "ramp stopped at mg-ramp-u7" in reason and "delocalised" in reason


def test_reseed_retry_starts_fresh_and_the_ramp_continues(mock_vasp, tmp_path, monkeypatch):
    _transient_fault_at(monkeypatch, "mg-ramp-u7")
    wavecar = _wavecar_at_start(monkeypatch)
    flow = _campaign(tmp_path, reseed_on_delocalisation=True)
    _, docs = _run(flow, tmp_path, monkeypatch)
    assert _ramp_jobs(mock_vasp) == [
        "mg-ramp-u9",
        "mg-ramp-u7",
        "mg-ramp-u7-reseed",
        "mg-ramp-u5",
        "mg-static",
    ]
    first = _check(docs, "mg-ramp-u7")
    assert first["action"] == "reseed" and first["localised"] is False
    assert "fresh" in first["reason"]
    # re-seeded where the polarons were before the step (the U = 9 result)
    u9 = _check(docs, "mg-ramp-u9")
    assert sorted(first["reseed_sites"]) == sorted(u9["polaron_sites"])
    # messages name VASP ion numbers (1-based, as analyze and the OUTCAR); fields stay 0-based
    ions = ", ".join(str(i + 1) for i in sorted(u9["polaron_sites"]))
    assert f"seeds on W ion {ions}" in first["reason"] and f"on W ion {ions})" in u9["reason"]
    retry = _check(docs, "mg-ramp-u7-reseed")
    assert retry["localised"] is True and retry["attempt"] == 1
    record = docs["mg-ramp-u7-reseed"]["output"]["additional_json"]["polaronflow"]
    assert record["retry_of"] == "mg-ramp-u7" and record["u"] == 7.0
    assert record["fresh_start"] is True and record["reseed_stretch"] == 0.03
    # VASP ignores MAGMOM when it reads a WAVECAR: the retry must start without one
    assert wavecar["mg-ramp-u7"] is True and wavecar["mg-ramp-u7-reseed"] is False
    incar = _incar(mock_vasp, "mg-ramp-u7-reseed")
    assert incar["ISTART"] == 0 and incar["ICHARG"] == 2
    assert {i for i, m in enumerate(incar["MAGMOM"]) if abs(m) > 0.9} == set(first["reseed_sites"])
    assert sum(1 for m in incar["MAGMOM"] if m) == len(first["reseed_sites"])
    assert "ISTART" not in _incar(mock_vasp, "mg-ramp-u7")
    # the retry has the step's job id, so U = 5 continued from the retry's WAVECAR
    assert docs["mg-ramp-u7-reseed"]["uuid"] == docs["mg-ramp-u7"]["uuid"]
    assert docs["mg-ramp-u7-reseed"]["index"] == docs["mg-ramp-u7"]["index"] + 1
    assert wavecar["mg-ramp-u5"] is True
    retry_moments = [
        s["properties"]["magmom"] for s in docs["mg-ramp-u7-reseed"]["output"]["structure"]["sites"]
    ]
    assert _incar(mock_vasp, "mg-ramp-u5")["MAGMOM"] == pytest.approx(retry_moments, abs=1e-6)
    assert _check(docs, "mg-static")["localised"] is True


def test_reseed_at_the_previous_u_first_relocalises_there(mock_vasp, tmp_path, monkeypatch):
    _transient_fault_at(monkeypatch, "mg-ramp-u7")
    wavecar = _wavecar_at_start(monkeypatch)
    flow = _campaign(tmp_path, reseed_on_delocalisation=True, reseed_at_previous_u=True)
    _, docs = _run(flow, tmp_path, monkeypatch)
    assert _ramp_jobs(mock_vasp) == [
        "mg-ramp-u9",
        "mg-ramp-u7",
        "mg-ramp-u7-reseed-u9",
        "mg-ramp-u7-reseed",
        "mg-ramp-u5",
        "mg-static",
    ]
    fresh = _incar(mock_vasp, "mg-ramp-u7-reseed-u9")
    assert fresh["ISTART"] == 0 and fresh["LDAUU"][fresh["LDAUL"].index(2)] == 9.0
    assert wavecar["mg-ramp-u7-reseed-u9"] is False
    again = _incar(mock_vasp, "mg-ramp-u7-reseed")
    assert "ISTART" not in again and again["LDAUU"][again["LDAUL"].index(2)] == 7.0
    assert wavecar["mg-ramp-u7-reseed"] is True  # from the U = 9 retry
    assert _check(docs, "mg-ramp-u7-reseed")["localised"] is True
    assert _check(docs, "mg-static")["localised"] is True


def test_a_retry_that_delocalises_again_stops_the_ramp(mock_vasp, tmp_path, monkeypatch):
    mock_vasp.fault("mg-ramp", "delocalise below_u=8")
    flow = _campaign(tmp_path, reseed_on_delocalisation=True)
    _, docs = _run(flow, tmp_path, monkeypatch)
    # retried exactly once, then stopped
    assert _ramp_jobs(mock_vasp) == ["mg-ramp-u9", "mg-ramp-u7", "mg-ramp-u7-reseed"]
    retry = _check(docs, "mg-ramp-u7-reseed")
    assert retry["action"] == "stop" and retry["attempt"] == 1
    assert "did not localise either" in retry["reason"]
    assert _skipped(docs, "mg-static") is True
    reason = docs["campaign-analysis"]["output"]["missing_reasons"]["mg-static"]
    assert "mg-ramp-u7-reseed" in reason


def test_check_can_be_switched_off_and_settings_are_validated(tmp_path) -> None:
    from polaronflow.workflows.campaign.ramp import URampMaker
    from polaronflow.workflows.vasp.checks import PolaronCheckedVaspMaker

    def makers(flow):
        return {j.name: j.maker for j, _ in flow.iterflow() if j.name.startswith("mg-ramp")}

    on = makers(_campaign(tmp_path))
    assert on and all(isinstance(m, PolaronCheckedVaspMaker) for m in on.values())
    assert all(m.reseed_stretch == 0.03 and m.expected_polarons == 2 for m in on.values())
    off = makers(_campaign(tmp_path, polaron_check=False))
    assert not any(isinstance(m, PolaronCheckedVaspMaker) for m in off.values())
    for bad in ({"polaron_threshold": 0}, {"reseed_stretch": 0.5}, {"expected_polarons": -1}):
        with pytest.raises(WorkflowError):
            URampMaker(name="mg", **bad)
    with pytest.raises(WorkflowError, match="reseed_stretch"):
        _campaign(tmp_path, reseed_stretch=0.5)


def test_checked_campaign_survives_fireworks_serialisation(tmp_path) -> None:
    from fireworks import Workflow
    from jobflow.managers.fireworks import flow_to_workflow

    flow = _campaign(tmp_path, reseed_on_delocalisation=True, reseed_stretch=0.05)
    again = Workflow.from_dict(flow_to_workflow(flow).to_dict())
    ramp = [fw for fw in again.fws if fw.name.startswith("mg-ramp")]
    assert len(ramp) == 3
    for fw in ramp:
        maker = fw.tasks[0]["job"].function.__self__
        assert maker.reseed_on_delocalisation is True and maker.reseed_stretch == 0.05


def _fireworks(flow, tmp_path: Path, monkeypatch):
    from fireworks import FWorker
    from fireworks.core.rocket_launcher import rapidfire
    from jobflow.managers.fireworks import flow_to_workflow

    from polaronflow.workflows.runtime.submit import embedded_jobstore, embedded_launchpad

    monkeypatch.chdir(tmp_path)
    store = embedded_jobstore(tmp_path / "project")
    with embedded_launchpad(tmp_path / "project", timeout=30) as lp:
        lp.add_wf(flow_to_workflow(flow, store=store))
        rapidfire(lp, FWorker(), nlaunches=0, max_loops=1, sleep_time=0, strm_lvl="ERROR")
        states = {fw["name"]: fw["state"] for fw in lp.fireworks.find({}, {"name", "state"})}
    store.connect()
    return states, store


def test_fireworks_skips_the_rest_of_a_delocalised_ramp_and_analyses(
    mock_vasp, tmp_path, monkeypatch
) -> None:
    """Through FireWorks (embedded LaunchPad, rocket launcher): nothing is left WAITING."""
    mock_vasp.fault("mg-ramp", "delocalise below_u=8")
    states, store = _fireworks(_campaign(tmp_path), tmp_path, monkeypatch)
    assert set(states.values()) == {"COMPLETED"}, states
    assert _ramp_jobs(mock_vasp) == ["mg-ramp-u9", "mg-ramp-u7"]
    doc = store.query_one({"name": "mg-ramp-u7"}, properties=["output"])
    check = doc["output"]["additional_json"]["polaron_check"]
    assert check["action"] == "stop" and "delocalised" in check["reason"]
    static = store.query_one({"name": "mg-static"}, properties=["output"])["output"]
    assert static["additional_json"]["skipped"] is True
    analysis = store.query_one({"name": "campaign-analysis"}, properties=["output"])["output"]
    assert "ramp stopped at mg-ramp-u7" in analysis["missing_reasons"]["mg-static"]


def test_fireworks_runs_the_reseeded_retry_as_a_detour(mock_vasp, tmp_path, monkeypatch) -> None:
    _transient_fault_at(monkeypatch, "mg-ramp-u7")
    flow = _campaign(tmp_path, reseed_on_delocalisation=True, analysis=False)
    states, store = _fireworks(flow, tmp_path, monkeypatch)
    ramp = ["mg-ramp-u9", "mg-ramp-u7", "mg-ramp-u7-reseed", "mg-ramp-u5", "mg-static"]
    assert {n: states[n] for n in ramp} == dict.fromkeys(ramp, "COMPLETED")
    assert set(states.values()) == {"COMPLETED"}
    assert _ramp_jobs(mock_vasp) == ramp
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
