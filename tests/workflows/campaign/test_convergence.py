"""The dynamic k-point convergence loop, run with jobflow's run_locally and a stand-in static.

The stand-in static returns an energy per atom that converges like a real total energy,
E(n) = E_inf + A / n^4 for an n x n x n mesh, so the loop's decisions can be checked exactly.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from jobflow import Maker, job, run_locally

E_INF, AMPLITUDE = -5.0, 0.1


@job
def fake_static(structure, mesh):
    n = mesh[0]
    return {"output": {"energy_per_atom": E_INF + AMPLITUDE / n**4}, "dir_name": f"/runs/{n}"}


@dataclass
class FakeStatic(Maker):
    name: str = "fake"
    kpoint_mesh: tuple = (1, 1, 1)

    def make(self, structure):
        new = fake_static(structure, self.kpoint_mesh)
        new.name = self.name
        return new


@pytest.fixture(scope="module")
def mgo():
    from polaronflow.structures.references import reference_structure

    return reference_structure("MgO")


def _result(responses):
    from polaronflow.workflows.campaign.convergence import KPointConvergenceResult

    found = [
        r.output
        for per_job in responses.values()
        for r in per_job.values()
        if isinstance(r.output, KPointConvergenceResult)
    ]
    assert len(found) == 1
    return found[0]


def test_loop_raises_density_until_converged(mgo):
    from polaronflow.workflows.campaign.convergence import KPointConvergenceMaker
    from polaronflow.workflows.vasp.sets import kpoint_mesh

    maker = KPointConvergenceMaker(name="ref-MgO", static_maker=FakeStatic(), start_length=10)
    first = maker.make(mgo)
    assert first.name == "ref-MgO-kconv"
    res = _result(run_locally(first, log=False, ensure_success=True))
    assert res.converged and not res.molecule
    energies = [h.energy_per_atom for h in res.history]
    meshes = [h.mesh for h in res.history]
    assert meshes[0] == kpoint_mesh(mgo, 10)
    # each mesh denser than the last, no mesh repeated
    assert all(b[0] > a[0] for a, b in itertools.pairwise(meshes))
    # stopped at the first two consecutive differences below 0.02 meV/atom, not before
    deltas = [abs(b - a) for a, b in itertools.pairwise(energies)]
    assert maker.consecutive == 2
    assert deltas[-1] < 2e-5 and deltas[-2] < 2e-5
    assert not any(a < 2e-5 and b < 2e-5 for a, b in itertools.pairwise(deltas[:-1]))
    assert res.mesh == meshes[-1]
    assert res.energy == pytest.approx(energies[-1] * len(mgo))
    assert res.dir_name == f"/runs/{meshes[-1][0]}"
    assert (
        next(h.job_name for h in res.history) == f"ref-MgO-kconv-k{'x'.join(map(str, meshes[0]))}"
    )


def test_loop_cap_fails_clearly(mgo):
    from polaronflow.errors import WorkflowError
    from polaronflow.workflows.campaign.convergence import KPointConvergenceMaker

    maker = KPointConvergenceMaker(
        name="ref-MgO", static_maker=FakeStatic(), start_length=10, max_steps=3
    )
    with pytest.raises(WorkflowError, match=r"ref-MgO not reached after 3 meshes"):
        run_locally(maker.make(mgo), log=False, raise_immediately=True)


def test_molecule_is_gamma_only_single_static():
    from polaronflow.structures.references import reference_structure
    from polaronflow.workflows.campaign.convergence import KPointConvergenceMaker

    o2 = reference_structure("O2")
    maker = KPointConvergenceMaker(name="ref-O2", static_maker=FakeStatic())
    res = _result(run_locally(maker.make(o2), log=False, ensure_success=True))
    assert res.molecule and res.converged
    assert res.mesh == (1, 1, 1) and len(res.history) == 1
    assert res.delta_energy_per_atom is None


def test_real_static_spec_is_gamma_for_relaxed_molecule():
    # a relaxed O2 from a previous run has lost properties["molecule"]; the loop still knows
    from polaronflow.structures.references import reference_structure
    from polaronflow.workflows.campaign.convergence import KPointConvergenceMaker

    o2 = reference_structure("O2")
    o2.properties = {}
    maker = KPointConvergenceMaker(name="ref-O2", molecule=True)
    assert maker.first_mesh(o2) == (1, 1, 1)
    spec = maker.static_spec(maker.static_name((1, 1, 1)), (1, 1, 1))
    inp = spec.generator.get_input_set(o2, potcar_spec=True)
    assert tuple(inp["KPOINTS"].kpts[0]) == (1, 1, 1)
    assert not [k for k in inp["INCAR"] if k.startswith("LDAU")]
    static = maker.static_job(o2, (1, 1, 1), None)
    assert static.name == "ref-O2-kconv-k1x1x1"
    assert static.metadata["polaronflow"]["role"] == "kpoint-convergence"


@pytest.mark.parametrize(
    ("field", "value"),
    [("tolerance", 0.0), ("start_length", -1.0), ("length_step", float("nan")), ("max_steps", 1)],
)
def test_bad_settings_are_workflow_errors(field, value):
    from polaronflow.errors import WorkflowError
    from polaronflow.workflows.campaign.convergence import KPointConvergenceMaker

    with pytest.raises(WorkflowError, match=field):
        KPointConvergenceMaker(**{field: value})
