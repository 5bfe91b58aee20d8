"""The U-ramp maker: schedule validation, job chain, hand-offs, records, FireWorks conversion."""

from __future__ import annotations

import math

import pytest


@pytest.fixture(scope="module")
def seeded(wo3_supercell):
    s = wo3_supercell.copy()
    s.add_site_property("magmom", [1.0 if i in (3, 10) else 0.0 for i in range(len(s))])
    return s


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ([], "empty"),
        ((), "empty"),
        ("", "empty"),
        ([9, math.nan, 5], "not finite"),
        ([9, math.inf], "not finite"),
        ([9, -1], "negative"),
        ("9,x,5", "not a number"),
        ([9, 9, 5], "repeats"),
        (None, "list of U values"),
    ],
)
def test_bad_schedules_raise_workflow_error(schedule, message):
    from polaronflow.errors import WorkflowError
    from polaronflow.workflows.campaign.ramp import URampMaker

    with pytest.raises(WorkflowError, match=message):
        URampMaker(schedule=schedule)


def test_schedule_either_direction_and_strings():
    from polaronflow.workflows.campaign.ramp import validate_schedule

    assert validate_schedule("9, 8,7 ,6,5") == (9.0, 8.0, 7.0, 6.0, 5.0)
    assert validate_schedule([0, 2.5, 5]) == (0.0, 2.5, 5.0)  # Meredig-style ramp up
    assert validate_schedule([5]) == (5.0,)


def test_bad_isif_is_workflow_error():
    from polaronflow.errors import WorkflowError
    from polaronflow.workflows.campaign.ramp import URampMaker

    with pytest.raises(WorkflowError, match="final_isif"):
        URampMaker(final_isif=9)


def test_ramp_flow_chain(seeded):
    from polaronflow.workflows.campaign.ramp import URampMaker

    flow = URampMaker(name="mg").make(seeded)
    names = [j.name for j in flow.jobs]
    assert names == [f"mg-ramp-u{u}" for u in (9, 8, 7, 6, 5)] + ["mg-static"]
    jobs = flow.jobs
    for k, job in enumerate(jobs):
        maker = job.maker
        gen = maker.input_set_generator
        rec = job.metadata["polaronflow"]
        assert rec == maker.write_additional_data["polaronflow:json"]
        assert rec["u_schedule"] == [9.0, 8.0, 7.0, 6.0, 5.0]
        assert gen.hubbard_u == {"W": rec["u"]}
        if k == 0:
            # first step: the seeded structure itself, nothing copied
            assert job.function_args[0] is seeded
            assert maker.copy_vasp_kwargs == {}
        else:
            # later steps: previous CONTCAR (with its moments) and WAVECAR
            prev = jobs[k - 1]
            assert job.function_args[0].uuid == prev.uuid
            assert job.function_args[0].attributes == (("a", "structure"),)
            assert job.function_kwargs["prev_dir"].attributes == (("a", "dir_name"),)
            assert maker.copy_vasp_kwargs == {"additional_vasp_files": ("WAVECAR",)}
        if k < 5:
            assert gen.lwave is True
            assert gen.isif == (3 if k == 4 else 2)
    handlers = {type(h).__name__ for h in jobs[0].maker.run_vasp_kwargs["handlers"]}
    assert "IncorrectSmearingHandler" not in handlers and "VaspErrorHandler" in handlers


def test_ramp_options(seeded):
    from polaronflow.workflows.campaign.ramp import URampMaker

    maker = URampMaker(
        name="x", schedule=(0, 3), final_isif=2, nupdown=0, with_static=False, walltime=3600
    )
    flow = maker.make(seeded)
    assert [j.name for j in flow.jobs] == ["x-ramp-u0", "x-ramp-u3"]
    assert all(j.maker.input_set_generator.nupdown == 0 for j in flow.jobs)
    assert flow.jobs[-1].maker.input_set_generator.isif == 2
    handlers = [type(h).__name__ for h in flow.jobs[0].maker.run_vasp_kwargs["handlers"]]
    assert handlers[-1] == "WalltimeHandler"


def test_ramp_converts_to_fireworks_and_round_trips(seeded):
    from fireworks import Workflow
    from jobflow.managers.fireworks import flow_to_workflow
    from monty.json import MontyDecoder

    from polaronflow.workflows.campaign.ramp import URampMaker

    maker = URampMaker(name="mg", schedule=(9, 5))
    wf = flow_to_workflow(maker.make(seeded))
    assert len(wf.fws) == 3
    again = Workflow.from_dict(wf.to_dict())
    names = sorted(fw.name for fw in again.fws)
    assert names == ["mg-ramp-u5", "mg-ramp-u9", "mg-static"]
    # the maker survives serialisation with its fields (what a FireWorks worker rebuilds)
    back = MontyDecoder().process_decoded(maker.as_dict())
    assert back.schedule == (9.0, 5.0) and back.name == "mg"
    assert [s.name for s in back.steps()] == [s.name for s in maker.steps()]
