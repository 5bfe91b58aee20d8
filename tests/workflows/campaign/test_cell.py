"""The converged-volume cell relaxation loop, run with jobflow's run_locally and a stand-in
relaxation.

The stand-in relaxation behaves like an ISIF 3 run biased by Pulay stress: it ends at
V* + r (V_start - V*), i.e. each restart removes a fixed fraction of the remaining volume error,
so the number of relaxations the loop needs is known in closed form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from jobflow import Maker, job, run_locally

V_STAR, RATIO = 400.0, 0.2


@job
def fake_relax(structure, folder):
    relaxed = structure.copy()
    v = V_STAR + RATIO * (structure.volume - V_STAR)
    relaxed.scale_lattice(v)
    Path(folder).mkdir(parents=True, exist_ok=True)
    return {"structure": relaxed, "dir_name": str(folder)}


@dataclass
class FakeRelax(Maker):
    name: str = "fake"
    root: str = "."

    def make(self, structure, prev_dir=None):
        new = fake_relax(structure, str(Path(self.root) / self.name))
        new.name = self.name
        return new


def _start(volume: float):
    from pymatgen.core import Lattice, Structure

    s = Structure(Lattice.cubic(1.0), ["W"], [[0, 0, 0]])
    s.scale_lattice(volume)
    return s


def _expected_relaxations(v0: float, tol: float) -> tuple[int, list[float]]:
    changes, v = [], v0
    while True:
        new = V_STAR + RATIO * (v - V_STAR)
        changes.append((new - v) / v)
        v = new
        if abs(changes[-1]) < tol:
            return len(changes), changes


def _result(responses):
    from polaronflow.workflows.campaign.cell import CellRelaxResult

    found = [
        r.output
        for per_job in responses.values()
        for r in per_job.values()
        if isinstance(r.output, CellRelaxResult)
    ]
    assert len(found) == 1
    return found[0]


def test_relaxes_again_until_the_volume_settles(tmp_path):
    from polaronflow.workflows.campaign.cell import VERDICT_FILE, ConvergedRelaxMaker

    v0 = 1.10 * V_STAR  # like the experimental cell relaxing by a few %
    n, changes = _expected_relaxations(v0, 0.005)
    assert n == 3  # -7.3 %, -1.6 %, -0.3 %: the third change is the first below 0.5 %
    maker = ConvergedRelaxMaker(name="cell", relax_maker=FakeRelax(root=str(tmp_path)))
    flow = maker.make(_start(v0))
    assert [j.name for j in flow.jobs] == ["cell", "cell-check"]
    responses = run_locally(flow, log=False, ensure_success=True)
    res = _result(responses)
    assert res.converged and res.relaxations == n
    assert [h.job_name for h in res.history] == ["cell", "cell-2", "cell-3"]
    assert [h.volume_change for h in res.history] == pytest.approx(changes)
    # every earlier relaxation was above the tolerance, each started where the last ended
    assert all(abs(h.volume_change) >= 0.005 for h in res.history[:-1])
    for a, b in zip(res.history, res.history[1:], strict=False):
        assert b.volume_start == pytest.approx(a.volume_end)
    # the output is the LAST relaxation's cell and folder
    assert res.structure.volume == pytest.approx(res.history[-1].volume_end)
    assert res.dir_name == str(tmp_path / f"cell-{n}")
    verdict = json.loads((tmp_path / f"cell-{n}" / VERDICT_FILE).read_text())
    assert verdict["converged"] is True and verdict["relaxations"] == n
    assert verdict["volume_tolerance"] == 0.005 and "structure" not in verdict


def test_a_start_at_the_minimum_needs_one_relaxation(tmp_path):
    from polaronflow.workflows.campaign.cell import ConvergedRelaxMaker

    maker = ConvergedRelaxMaker(name="cell", relax_maker=FakeRelax(root=str(tmp_path)))
    res = _result(run_locally(maker.make(_start(V_STAR * 1.001)), log=False))
    assert res.converged and res.relaxations == 1


def test_cap_fails_clearly_and_writes_the_verdict(tmp_path):
    from polaronflow.errors import WorkflowError
    from polaronflow.workflows.campaign.cell import VERDICT_FILE, ConvergedRelaxMaker

    maker = ConvergedRelaxMaker(
        name="cell", relax_maker=FakeRelax(root=str(tmp_path)), max_relaxations=2
    )
    with pytest.raises(WorkflowError, match=r"cell not converged after 2 relaxations"):
        run_locally(maker.make(_start(1.5 * V_STAR)), log=False, raise_immediately=True)
    verdict = json.loads((tmp_path / "cell-2" / VERDICT_FILE).read_text())
    assert verdict["converged"] is False and verdict["relaxations"] == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [("volume_tolerance", 0.0), ("volume_tolerance", float("nan")), ("max_relaxations", 1)],
)
def test_bad_settings_are_workflow_errors(field, value):
    from polaronflow.errors import WorkflowError
    from polaronflow.workflows.campaign.cell import ConvergedRelaxMaker

    with pytest.raises(WorkflowError, match=field):
        ConvergedRelaxMaker(**{field: value})


def test_vasp_restarts_are_named_recorded_and_reached_by_powerups(gamma_wo3):
    """The real VASP maker: restart names, records, and a powerup on the loop's maker."""
    from atomate2.vasp.powerups import update_user_incar_settings
    from jobflow import Flow

    from polaronflow import naming
    from polaronflow.workflows.campaign.cell import ConvergedRelaxMaker
    from polaronflow.workflows.campaign.plan import plan_campaign
    from polaronflow.workflows.vasp.makers import maker_from_spec

    plan = plan_campaign(ions=["Mg"], references=False, schedule=(9, 5))
    maker = ConvergedRelaxMaker(relax_maker=maker_from_spec(plan.pristine.unit_relax))
    flow = update_user_incar_settings(Flow([maker.make(gamma_wo3)]), {"ENCUT": 520})
    first, check = flow.jobs[0].jobs
    assert first.name == "wo3-unit-relax" and check.name == "wo3-unit-relax-check"
    assert first.maker.input_set_generator.user_incar_settings["ENCUT"] == 520
    # the maker the check job will use for the restarts got the powerup too
    loop = check.function_args[0]
    assert loop.relax_maker.input_set_generator.user_incar_settings["ENCUT"] == 520
    restart = loop.relax_job(gamma_wo3, 2, prev_dir="/runs/wo3-unit-relax")
    assert restart.name == "wo3-unit-relax-2"
    assert restart.maker.input_set_generator.user_incar_settings["ENCUT"] == 520
    assert restart.maker.input_set_generator.isif == 3
    record = restart.metadata["polaronflow"]
    assert record["role"] == "unit-relax" and record["relaxation"] == 2
    assert record["restart_of"] == "wo3-unit-relax" and record["volume_tolerance"] == 0.005
    parsed = naming.parse_job_name(restart.name)
    assert parsed.role is naming.Role.UNIT_RELAX and parsed.relaxation == 2
    assert parsed.is_vasp
    assert not naming.parse_job_name(check.name).is_vasp
    assert restart.function_kwargs["prev_dir"] == "/runs/wo3-unit-relax"


def test_last_relaxation_is_the_one_to_read():
    from polaronflow import naming

    names = ["wo3-unit-relax", "wo3-unit-relax-10", "wo3-unit-relax-2", "wo3-unit-relax-check"]
    assert naming.last_relaxation(names) == "wo3-unit-relax-10"
    assert naming.last_relaxation(["wo3-unit-relax"]) == "wo3-unit-relax"
    assert naming.last_relaxation(["mg-static"]) is None
    assert naming.parse_job_name("wo3-unit-relax").relaxation == 1
    assert naming.parse_job_name("wo3-unit-relax-1") is None  # the first has no number
