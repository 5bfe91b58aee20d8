"""The campaign: the typed plan, the one Flow builder, options, bad input, FireWorks."""

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


def _jobs(flow) -> dict:
    """Every job of a Flow (sub-flows such as the U ramps included), by name."""
    return {job.name: job for job, _ in flow.iterflow()}


@pytest.fixture(scope="module")
def plan():
    from polaronflow.workflows.campaign.plan import plan_campaign

    return plan_campaign()


@pytest.fixture(scope="module")
def flow(plan):
    from polaronflow.workflows.campaign.maker import campaign_flow

    return campaign_flow(plan)


def test_plan_is_a_typed_tree_in_dependency_order(plan):
    from polaronflow.naming import Role

    jobs = list(plan.jobs())
    # the loop's first static stands for the loop in the dry run
    assert [j.loop or j.name for j in jobs] == PAPER_JOBS
    seen: set[str] = set()
    for j in jobs:
        assert set(j.parents) <= seen, f"{j.name} runs before its parents {j.parents}"
        seen.add(j.name)
    assert plan.pristine.unit_relax.generator.isif == 3
    assert plan.pristine.unit_relax.generator.hubbard_u == {"W": 5.0}
    assert len(plan.pristine.supercell) == 256
    mg, h2 = plan.systems
    assert (mg.tag, mg.electrons, h2.tag, h2.electrons) == ("mg", 2, "h2", 2)
    assert mg.structure.composition.formula == "Mg1 W64 O192"
    assert len(h2.structure) == 258
    assert mg.ramp.schedule == (9.0, 8.0, 7.0, 6.0, 5.0)
    by_name = {j.name: j for j in jobs}
    assert by_name["mg-seed"].parents == ["wo3-supercell-relax"]
    assert by_name["mg-seed"].role is Role.SEED
    assert by_name["mg-static"].role is Role.RAMP_STATIC
    o2 = next(r for r in plan.references if r.phase == "O2")
    assert o2.molecule is True and o2.kconv.molecule is True
    assert by_name["ref-O2-kconv-k1x1x1"].loop == "ref-O2-kconv"


FLOW_JOBS = [*PAPER_JOBS, "campaign-analysis"]  # the plan's jobs + the final analysis job


def test_flow_wires_outputs(flow):
    jobs = _jobs(flow)
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
    from polaronflow.workflows.campaign.plan import plan_campaign

    plan = plan_campaign(
        ions=["Mg"],
        polarons=["auto", "37,1"],
        nupdown=[None, 0, 2],
        references=False,
        schedule=(9, 5),
    )
    names = [s.seed_name for s in plan.systems]
    assert names == [f"mg-c{c}{n}-seed" for c in (1, 2) for n in ("", "-nupdown0", "-nupdown2")]
    by_name = {j.name: j for j in plan.jobs()}
    # NUPDOWN 0: antiparallel seeds so the start fits the fixed zero total moment
    m0 = by_name["mg-c2-nupdown0-seed"].structure.site_properties["magmom"]
    assert sorted(m for m in m0 if m) == [-1.0, 1.0]
    m2 = by_name["mg-c2-nupdown2-seed"].structure.site_properties["magmom"]
    assert {i for i, m in enumerate(m2) if m} == {37, 1}
    assert all(m == 1.0 for m in m2 if m)
    assert by_name["mg-c1-nupdown2-static"].spec.generator.nupdown == 2
    assert by_name["mg-c1-static"].spec.generator.nupdown is None
    assert not plan.references


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
    from polaronflow.workflows.campaign.plan import plan_campaign

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

    jobs = _jobs(flow)
    for name in ("mg-ramp-u9", "mg-ramp-u5", "mg-static", "h2-ramp-u7", "h2-static"):
        assert isinstance(jobs[name].function.__self__, PolaronCheckedVaspMaker), name
        assert jobs[name].function.__self__.reseed_on_delocalisation is False
    for name in ("wo3-supercell-static", "ref-MgO-relax"):
        assert not isinstance(jobs[name].function.__self__, PolaronCheckedVaspMaker), name
