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

The WAVECAR is what carries the polarons through the ramp: VASP reads it (ISTART defaults to
1 when a WAVECAR is present) and then ignores MAGMOM. The OUTCAR moments handed on as the
``magmom`` site property act only when a step starts without a WAVECAR.

Polaron check (on by default): every step is a
:class:`~polaronflow.workflows.vasp.checks.PolaronCheckedVaspMaker`, which reads its finished
run and counts the W sites with ``|m| >= polaron_threshold``. When fewer than the electrons
donated localise, the report goes into ``additional_json["polaron_check"]`` and the later steps
of the ramp skip (no VASP, the reason handed on); with ``reseed_on_delocalisation=True`` (off
by default, recorded in every job's record) the step is first retried once, starting fresh (no
WAVECAR, ISTART = 0, ICHARG = 2) with the seeds put back and a bond-distortion seed
(job ``{step}-reseed``; with ``reseed_at_previous_u`` first ``{step}-reseed-u{previous U}``).
A delocalised state is never handed on as a polaron result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobflow import Flow, Maker

from polaronflow.errors import WorkflowError
from polaronflow.workflows.campaign.planning import DEFAULT_SCHEDULE, RampPlan, validate_schedule
from polaronflow.workflows.vasp.makers import maker_from_spec
from polaronflow.workflows.vasp.spec import DEFAULT_RESEED_STRETCH

if TYPE_CHECKING:
    from pathlib import Path

    from pymatgen.core import Structure

__all__ = ["DEFAULT_SCHEDULE", "URampMaker", "validate_schedule"]


@dataclass
class URampMaker(RampPlan, Maker):
    """Relax through a U schedule, then run a static at the final U.

    The fields are those of :class:`~polaronflow.workflows.campaign.planning.RampPlan` (name prefix,
    schedule, final/intermediate ISIF, NUPDOWN, input-set templates, custodian settings), and:

    Parameters
    ----------
    check_polarons
        Check the polarons after every step and stop the ramp when they delocalise.
    polaron_threshold
        |m| (μB) at or above which a W site counts as a polaron.
    expected_polarons
        Electrons expected to localise; None derives them from the dopants.
    reseed_on_delocalisation
        Retry a delocalised step once with the original seeds put back (off by default).
    reseed_moment
        Seed moment (μB) for the retry.
    reseed_stretch
        Fractional W–O bond stretch of the re-seeded W for the retry (default +3 %; 0 = none).
    reseed_at_previous_u
        The retry first re-localises at the previous (higher) U of the schedule, then repeats
        the step from that run's WAVECAR.
    """

    check_polarons: bool = True
    polaron_threshold: float = 0.3
    expected_polarons: float | None = None
    reseed_on_delocalisation: bool = False
    reseed_moment: float = 1.0
    reseed_stretch: float = DEFAULT_RESEED_STRETCH
    reseed_at_previous_u: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        for attr in ("polaron_threshold", "reseed_moment"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not (
                isinstance(value, int | float) and math.isfinite(value) and value > 0
            ):
                raise WorkflowError(f"{attr} must be a positive number (μB), got {value!r}")
        stretch = self.reseed_stretch
        if isinstance(stretch, bool) or not (
            isinstance(stretch, int | float) and 0.0 <= stretch <= 0.2
        ):
            raise WorkflowError(f"reseed_stretch must be a fraction in [0, 0.2], got {stretch!r}")
        if self.expected_polarons is not None and (
            isinstance(self.expected_polarons, bool)
            or not isinstance(self.expected_polarons, int | float)
            or not self.expected_polarons >= 0
        ):
            raise WorkflowError(
                f"expected_polarons must be a number >= 0 or None, got {self.expected_polarons!r}"
            )

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
        from polaronflow.workflows.vasp.makers import make_job
        from polaronflow.workflows.vasp.spec import RECORD_KEY

        jobs = []
        current_structure, current_dir = structure, prev_dir
        seeds = self._original_seeds(structure)
        for spec in self.steps():
            maker = maker_from_spec(spec, self.walltime, self.vasp_cmd, self.potcar_spec)
            if self.check_polarons:
                maker = self._checked(maker, seeds)
                record = dict(maker.write_additional_data.get(RECORD_KEY) or {})
                record.update(
                    polaron_check=True,
                    polaron_threshold=self.polaron_threshold,
                    reseed_on_delocalisation=self.reseed_on_delocalisation,
                    reseed_stretch=self.reseed_stretch,
                    reseed_at_previous_u=self.reseed_at_previous_u,
                )
                maker.write_additional_data = {**maker.write_additional_data, RECORD_KEY: record}
            new_job = make_job(maker, current_structure, prev_dir=current_dir)
            jobs.append(new_job)
            current_structure = new_job.output.structure
            current_dir = new_job.output.dir_name
        return Flow(jobs, output=jobs[-1].output, name=f"{self.name}-ramp")

    def _original_seeds(self, structure: Structure) -> list[int] | None:
        # Known at make time only when the start is a concrete structure (not a job output).
        from pymatgen.core import Structure as _Structure

        from polaronflow.workflows.vasp.checks import seed_sites_of

        if not isinstance(structure, _Structure):
            return None
        return seed_sites_of(structure, self.polaron_threshold) or None

    def _checked(self, maker: Any, seeds: list[int] | None) -> Any:
        from polaronflow.workflows.vasp.checks import with_polaron_check

        return with_polaron_check(
            maker,
            polaron_threshold=float(self.polaron_threshold),
            expected_polarons=self.expected_polarons,
            reseed_on_delocalisation=bool(self.reseed_on_delocalisation),
            reseed_sites=seeds,
            reseed_moment=float(self.reseed_moment),
            reseed_stretch=float(self.reseed_stretch),
            reseed_at_previous_u=bool(self.reseed_at_previous_u),
        )
