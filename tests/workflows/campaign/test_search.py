"""The ground-state search: plan, dry run, screening, selection, full ramps, ranking."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SMALL = {
    "ions": ["Mg"],
    "supercell": (2, 1, 1),
    "references": False,
    "schedule": (9, 7, 5),
    "search": True,
    "search_limit": 3,
    "search_keep": 2,
}


def _options(tmp_path: Path, **changes):
    from polaronflow.emulator.fast import fast_parameters_file
    from polaronflow.workflows.campaign.options import make_options

    params = fast_parameters_file(tmp_path / "fast_parameters.yaml")
    return make_options(**(SMALL | {"parameters_file": params} | changes))


def test_search_plan_screens_candidates_then_selects(tmp_path):
    from polaronflow import naming
    from polaronflow.workflows.campaign.plan import plan_campaign

    plan = plan_campaign(_options(tmp_path))
    assert not plan.systems and len(plan.searches) == 1
    search = plan.searches[0]
    assert search.label == "mg" and search.keep == 2 and len(search.candidates) == 3
    assert search.summary["n_screened"] == 3
    assert search.summary["n_candidates"] >= 3
    first = search.candidates[0]
    steps = first.screen.steps()
    # screening: first and production U, ions only, cheap settings, no static
    assert [s.record["u"] for s in steps] == [9.0, 5.0]
    assert all(s.calc == "relax" and s.generator.isif == 2 for s in steps)
    assert steps[0].generator.user_incar_settings["EDIFFG"] == -0.05
    assert steps[0].generator.kpoint_mesh == (1, 1, 1)
    # the full ramp is the paper's schedule and settings
    full = first.full.steps()
    assert [s.name for s in full][-1] == naming.static_name(first.full.name)
    assert full[0].generator.user_incar_settings == {}
    assert first.full.schedule == (9.0, 7.0, 5.0)
    # the seeds carry the candidate's spin state
    moments = [m for m in first.structure.site_properties["magmom"] if m]
    nupdown = first.candidate.nupdown
    assert sum(moments) == pytest.approx(nupdown)
    names = [j.name for j in plan.jobs()]
    assert names[-1] == "mg-select"
    assert first.screen.name in {naming.parse_job_name(n).system for n in names[4:7]}


def test_search_rejects_fixed_configurations(tmp_path):
    from polaronflow.errors import WorkflowError

    with pytest.raises(WorkflowError, match="enumerates"):
        _options(tmp_path, polarons=["37,0"])


def test_search_runs_screening_selection_full_ramps_and_ranks(mock_vasp, tmp_path, monkeypatch):
    from jobflow import JobStore, run_locally
    from maggma.stores import MemoryStore

    from polaronflow import naming
    from polaronflow.workflows.campaign.maker import campaign_flow
    from polaronflow.workflows.campaign.plan import plan_campaign

    plan = plan_campaign(_options(tmp_path, schedule=(9, 5)))
    flow = campaign_flow(plan)
    monkeypatch.chdir(tmp_path)
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    run_locally(flow, store=store, create_folders=True, log=False, ensure_success=True)
    store.connect()
    docs = {d["name"]: d for d in store.query({}, properties=["name", "output", "index", "uuid"])}

    ran = [naming.parse_job_name(n) for n in mock_vasp.job_names]
    screened = {j.system for j in ran if j.screen is not None}
    assert len(screened) == 3  # every candidate screened
    # the selection replaced itself by the full ramps; its output is their summary
    selection = store.get_output(docs["mg-select"]["uuid"], which="last")
    ranking = selection["ranking"]
    assert len(ranking) == 3 and all(r["usable"] for r in ranking)
    energies = [r["energy"] for r in ranking]
    assert energies == sorted(energies) and ranking[0]["delta_e"] == 0.0
    assert len(selection["selected"]) == 2
    # the full ramp and static ran for exactly the two lowest
    full = {j.system for j in ran if j.config is not None}
    assert full == set(selection["selected"])
    best = {naming.system_tag("mg", r["number"], r["nupdown"]) for r in ranking[:2]}
    assert full == best
    for tag in full:
        assert f"{tag}-static" in mock_vasp.job_names
        assert [f"{tag}-ramp-u{u}" in mock_vasp.job_names for u in (9, 5)] == [True] * 2
    # the analysis ranks the full statics and names the ground state
    search = docs["campaign-analysis"]["output"]["search"]["mg"]
    rows = search["full"]
    assert {r["job"] for r in rows} == {f"{t}-static" for t in full}
    assert [r["ground_state"] for r in rows] == [True, False]
    assert rows[0]["delta_e"] == 0.0 and rows[1]["delta_e"] >= 0.0
    assert rows[0]["screening"]["candidate"] is not None
    assert len(rows[0]["polaron_ions"]) == 2
    # `polaronflow analyze` on the statics ranks them too (the user's command line)
    import json
    import subprocess
    import sys

    # laid out as `polaronflow collect` does: RUNS/<job name> -> run folder
    runs_dir = tmp_path / "RUNS"
    runs_dir.mkdir()
    statics = []
    for r in rows:
        link = runs_dir / r["job"]
        link.symlink_to(docs["campaign-analysis"]["output"]["runs"][r["job"]])
        statics.append(str(link))
    done = subprocess.run(
        [sys.executable, "-m", "polaronflow", "analyze", *statics, "--json-out", "report.json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    ranked = json.loads(Path("report.json").read_text())["configurations"]
    assert [Path(r["run"]).name for r in ranked[0]["runs"]] == [r["job"] for r in rows]
    assert ranked[0]["runs"][1]["delta_e"] == pytest.approx(rows[1]["delta_e"], abs=1e-6)
    assert ranked[0]["runs"][0]["ground_state"] is True
    # the reproduction uses the lowest-energy static and lists the other
    reproduction = docs["campaign-analysis"]["output"]["reproduction"]
    assert Path(reproduction["runs"]["mg"]).name == rows[0]["job"]
    assert any(rows[1]["job"] in c for c in reproduction["run_choices"])


def test_search_finds_the_scenario_ground_state_and_ranks_the_rest(
    mock_vasp, tmp_path, monkeypatch
):
    """The emulator's energy depends on which W carry the polarons and with which spins; the
    search must rank the screened candidates in the order of that landscape and name its
    lowest as the ground state (computed here independently from the emulator's model)."""
    from jobflow import JobStore, run_locally
    from maggma.stores import MemoryStore

    from polaronflow.emulator.energy import configuration_energy
    from polaronflow.emulator.scenario import load_scenario
    from polaronflow.workflows.campaign.maker import campaign_flow
    from polaronflow.workflows.campaign.plan import plan_campaign

    options = _options(
        tmp_path, schedule=(9, 5), search_limit=None, search_shells=(1,), search_keep=1
    )
    plan = plan_campaign(options)
    search = plan.searches[0]
    assert len(search.candidates) >= 8  # both cavity orbits, both spin states
    monkeypatch.chdir(tmp_path)
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    run_locally(campaign_flow(plan), store=store, create_folders=True, log=False)
    store.connect()
    select = store.query_one({"name": "mg-select"}, properties=["uuid"])
    ranking = store.get_output(select["uuid"], which="last")["ranking"]

    # the landscape the emulator wrote, for each candidate's start (its seeds and spins)
    scenario = load_scenario("paper_like")
    expected = {}
    for c in search.candidates:
        sites = [s.index for s in c.candidate.seeds]
        signs = [1.0 if s.moment > 0 else -1.0 for s in c.candidate.seeds]
        expected[c.screen.name] = configuration_energy(c.structure, scenario, sites, signs, u=5.0)
    usable = [r for r in ranking if r["usable"]]
    assert len(usable) == len(search.candidates)  # U = 5 is above the critical U: all localise
    # ranked in the landscape's order, with its energy differences (to within what the
    # relaxation moves the dopant–W distances: a few meV)
    by_model = sorted(expected, key=expected.get)
    assert [r["tag"] for r in usable] == by_model
    lowest = expected[by_model[0]]
    for r in usable:
        assert r["delta_e"] == pytest.approx(expected[r["tag"]] - lowest, abs=0.01)
    # the spread is real: a ranking that cannot fail proves nothing
    assert usable[-1]["delta_e"] > 0.02
    # the ground state got the full ramp, and the analysis names it
    docs = {d["name"]: d for d in store.query({}, properties=["name", "output"])}
    full = docs["campaign-analysis"]["output"]["search"]["mg"]["full"]
    assert len(full) == 1 and full[0]["ground_state"] is True
    assert full[0]["screening"]["tag"] == by_model[0]
