"""The campaign: job names, dependencies, options, bad input, FireWorks conversion."""

from __future__ import annotations

import pytest

PAPER_JOBS = [
    "wo3-unit-relax",
    "wo3-supercell",
    "wo3-supercell-relax",
    "wo3-supercell-static",
    "mg-seed",
    "mg-ramp-u9",
    "mg-ramp-u8",
    "mg-ramp-u7",
    "mg-ramp-u6",
    "mg-ramp-u5",
    "mg-static",
    "h2-seed",
    "h2-ramp-u9",
    "h2-ramp-u8",
    "h2-ramp-u7",
    "h2-ramp-u6",
    "h2-ramp-u5",
    "h2-static",
    "ref-Mg-relax",
    "ref-Mg-kconv",
    "ref-MgO-relax",
    "ref-MgO-kconv",
    "ref-O2-relax",
    "ref-O2-kconv",
    "ref-H2-relax",
    "ref-H2-kconv",
    "ref-H2O-relax",
    "ref-H2O-kconv",
]


@pytest.fixture(scope="module")
def plan():
    from polaronflow.workflows.campaign.flow import plan_campaign

    return plan_campaign()


@pytest.fixture(scope="module")
def flow(plan):
    from polaronflow.workflows.campaign.flow import flow_from_plan

    return flow_from_plan(plan)


def test_plan_names_and_dependency_order(plan):
    assert [p.name for p in plan] == PAPER_JOBS
    seen: set[str] = set()
    for p in plan:
        assert set(p.parents) <= seen, f"{p.name} runs before its parents {p.parents}"
        seen.add(p.name)
    by_name = {p.name: p for p in plan}
    assert by_name["wo3-unit-relax"].spec.generator.isif == 3
    assert by_name["wo3-unit-relax"].spec.generator.hubbard_u == {"W": 5.0}
    assert len(by_name["wo3-supercell"].structure) == 256
    assert by_name["mg-seed"].parents == ["wo3-supercell-relax"]
    assert by_name["mg-seed"].structure.composition.formula == "Mg1 W64 O192"
    assert len(by_name["h2-seed"].structure) == 258
    assert by_name["ref-O2-kconv"].kconv.molecule is True


FLOW_JOBS = [*PAPER_JOBS, "campaign-analysis"]  # the plan's jobs + the final analysis job


def test_flow_wires_outputs(flow):
    jobs = {j.name: j for j in flow.jobs}
    assert sorted(jobs) == sorted(FLOW_JOBS)
    sc = jobs["wo3-supercell"]
    assert sc.function_args[0].uuid == jobs["wo3-unit-relax"].uuid
    seed = jobs["mg-seed"]
    assert seed.function_args[0].uuid == jobs["wo3-supercell-relax"].uuid
    first = jobs["mg-ramp-u9"]
    assert first.function_args[0].uuid == seed.uuid
    assert first.function_args[0].attributes == (("i", "structure"),)
    static = jobs["wo3-supercell-static"]
    assert static.function_kwargs["prev_dir"].uuid == jobs["wo3-supercell-relax"].uuid
    assert jobs["ref-MgO-kconv"].function_args[1].uuid == jobs["ref-MgO-relax"].uuid
    for name in ("mg-ramp-u9", "ref-O2-relax", "wo3-supercell-static"):
        assert jobs[name].metadata["polaronflow"]["job_name"] == name


def test_flow_converts_to_fireworks_workflow(flow):
    from fireworks import Workflow
    from jobflow.managers.fireworks import flow_to_workflow

    wf = flow_to_workflow(flow)
    assert len(wf.fws) == len(FLOW_JOBS)
    names = {fw.name for fw in wf.fws}
    assert names == set(FLOW_JOBS)
    parents = {
        fw.name: {wf.id_fw[i].name for i in wf.links.parent_links.get(fw.fw_id, [])}
        for fw in wf.fws
    }
    assert parents["mg-ramp-u8"] == {"mg-ramp-u9"}
    assert parents["mg-seed"] == {"wo3-supercell-relax"}
    assert Workflow.from_dict(wf.to_dict()).name == wf.name
    # the analysis job waits for the statics, the unit cell and the k-point loops, and runs
    # even when one of them failed
    analysis = next(fw for fw in wf.fws if fw.name == "campaign-analysis")
    assert {
        "mg-static",
        "h2-static",
        "wo3-supercell-static",
        "wo3-unit-relax",
        "ref-MgO-kconv",
    } <= parents["campaign-analysis"]
    assert "mg-ramp-u8" not in parents["campaign-analysis"]
    assert analysis.spec.get("_allow_fizzled_parents") is True


def test_variants_nupdown_and_configurations():
    from polaronflow.workflows.campaign.flow import plan_campaign

    plan = plan_campaign(
        ions=["Mg"],
        polarons=["auto", "37,1"],
        nupdown=[None, 0, 2],
        references=False,
        schedule=(9, 5),
    )
    names = [p.name for p in plan if p.kind == "seed"]
    assert names == [f"mg-c{c}{n}-seed" for c in (1, 2) for n in ("", "-nupdown0", "-nupdown2")]
    by_name = {p.name: p for p in plan}
    # NUPDOWN 0: antiparallel seeds so the start fits the fixed zero total moment
    m0 = by_name["mg-c2-nupdown0-seed"].structure.site_properties["magmom"]
    assert sorted(m for m in m0 if m) == [-1.0, 1.0]
    m2 = by_name["mg-c2-nupdown2-seed"].structure.site_properties["magmom"]
    assert {i for i, m in enumerate(m2) if m} == {37, 1}
    assert all(m == 1.0 for m in m2 if m)
    assert by_name["mg-c1-nupdown2-static"].spec.generator.nupdown == 2
    assert by_name["mg-c1-static"].spec.generator.nupdown is None
    assert not [p for p in plan if p.name.startswith("ref-")]


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"ions": ["Xe"]}, "WorkflowError", "unknown ion"),
        ({"ions": ["Al"]}, "ReferencePhaseError", "Al2O3"),
        ({"ions": []}, "WorkflowError", "at least one ion"),
        ({"ions": ["Mg", "mg"]}, "WorkflowError", "repeat"),
        ({"schedule": (9, float("nan"))}, "WorkflowError", "not finite"),
        ({"schedule": ()}, "WorkflowError", "empty"),
        ({"nupdown": [-1]}, "WorkflowError", "NUPDOWN"),
        ({"nupdown": [1]}, "WorkflowError", "impossible for mg"),
        ({"ions": ["Li"], "nupdown": [0]}, "WorkflowError", "use free or 1"),
        ({"ions": ["4H"], "nupdown": [6]}, "WorkflowError", "use free or 0, 2, 4"),
        ({"bogus": 1}, "WorkflowError", "bogus"),
        ({"polarons": ["5,6,x"]}, "PolaronSeedError", "auto"),
        ({"cavity": 999}, "DopingError", "out of range"),
    ],
)
def test_bad_options(kwargs, exc, match):
    from polaronflow import errors
    from polaronflow.workflows.campaign.flow import plan_campaign

    with pytest.raises(getattr(errors, exc), match=match):
        plan_campaign(**kwargs)


def test_parse_ion():
    from polaronflow.workflows.campaign.options import parse_ion

    assert parse_ion("Mg").label == "mg"
    assert (parse_ion("2H").ion, parse_ion("2H").protons, parse_ion("2H").label) == ("H", 2, "h2")
    assert parse_ion("H").protons == 2
    assert parse_ion("4H").label == "h4"


def test_ramp_steps_and_statics_check_their_polarons(flow):
    from polaronflow.workflows.vasp.checks import PolaronCheckedVaspMaker

    jobs = {j.name: j for j in flow.jobs}
    for name in ("mg-ramp-u9", "mg-ramp-u5", "mg-static", "h2-ramp-u7", "h2-static"):
        assert isinstance(jobs[name].function.__self__, PolaronCheckedVaspMaker), name
        assert jobs[name].function.__self__.reseed_on_delocalisation is False
    for name in ("wo3-supercell-static", "ref-MgO-relax"):
        assert not isinstance(jobs[name].function.__self__, PolaronCheckedVaspMaker), name
