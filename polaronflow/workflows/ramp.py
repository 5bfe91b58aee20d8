"""The U ramp: a chain of SCAN+U relaxations at decreasing (or increasing) U, then a static.

The paper starts at U = 9 eV "to facilitate polaron formation" and reduces U step by step to
the production 5 eV (default schedule 9, 8, 7, 6, 5). Each step starts from the previous step's
CONTCAR with its site moments (atomate2's output structure carries the OUTCAR moments as the
``magmom`` site property, which becomes MAGMOM) and its WAVECAR (copied; ``LWAVE`` on).
Steps before the last relax ions only (ISIF 2); the last step's ISIF is configurable (default 3,
so lattice changes of the doped cell can be measured). A static at the final U follows with
``LORBIT = 11``, a dense NEDOS and ``LCHARG`` for the spin density.

Job names: ``{name}-ramp-u{U}`` for each step (``U`` formatted with ``%g``: 9, 8, 6.5) and
``{name}-static``. Every job records the schedule and its own U in ``polaronflow.json`` /
``additional_json["polaronflow"]`` and in the job metadata (keys ``u_schedule``, ``u``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobflow import Flow, Maker

from polaronflow.workflows.planning import DEFAULT_SCHEDULE, RampPlan, validate_schedule

if TYPE_CHECKING:
    from pathlib import Path

    from pymatgen.core import Structure

__all__ = ["DEFAULT_SCHEDULE", "URampMaker", "validate_schedule"]


@dataclass
class URampMaker(RampPlan, Maker):
    """Relax through a U schedule, then run a static at the final U.

    The fields are those of :class:`~polaronflow.workflows.planning.RampPlan` (name prefix,
    schedule, final/intermediate ISIF, NUPDOWN, input-set templates, custodian settings).
    """

    def make(self, structure: Structure, prev_dir: str | Path | None = None) -> Flow:
        """Build the ramp flow.

        Parameters
        ----------
        structure
            The seeded start structure (``magmom`` site property on the polaron W sites).
        prev_dir
            A previous run folder to start the first step from (optional).

        Returns
        -------
        jobflow.Flow
            Jobs in run order; the flow's output is the static's (or the last step's) output.
        """
        from polaronflow.workflows.jobs import make_job

        jobs = []
        current_structure, current_dir = structure, prev_dir
        for spec in self.steps():
            maker = spec.maker(self.walltime, self.vasp_cmd, self.potcar_spec)
            new_job = make_job(maker, current_structure, prev_dir=current_dir)
            jobs.append(new_job)
            current_structure = new_job.output.structure
            current_dir = new_job.output.dir_name
        return Flow(jobs, output=jobs[-1].output, name=f"{self.name}-ramp")
