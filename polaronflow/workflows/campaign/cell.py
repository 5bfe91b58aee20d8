"""A cell relaxed until its volume stops changing between restarts (a dynamic jobflow loop).

A relaxation with ISIF 3 at a fixed plane-wave basis (ENCUT 500 eV, set up for the start
volume) feels the Pulay stress: when the volume changes much during the run, the final cell is
biased. atomate2's ``DoubleRelaxMaker`` answers with two relaxations in a row; here the same
idea is a loop with a cap (our choice, PAPER.md §1 leaves it open): :class:`ConvergedRelaxMaker`
relaxes the cell, a check job compares the relaxed volume with the volume the relaxation
started from, and while ``|ΔV/V| >= volume_tolerance`` (default 0.5 %) it replaces itself
(``Response(replace=...)``) by another relaxation started from the last CONTCAR (a fresh basis
at the new volume) and a new check. After ``max_relaxations`` relaxations without convergence
the check fails with a :class:`~polaronflow.errors.WorkflowError` naming the volume changes.

Job names (:mod:`polaronflow.naming`): the relaxations are ``{name}``, ``{name}-2``,
``{name}-3`` ...; the checks are ``{name}-check``. The output of the last check is a
:class:`CellRelaxResult` whose ``structure`` and ``dir_name`` are the **last** relaxation's
(what the next job must start from). Its verdict is also written as ``cell_relaxation.json``
into that relaxation's run folder, so a run folder collected on its own says whether its cell
converged.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobflow import Flow, Maker, Response, job
from pydantic import BaseModel, Field
from pymatgen.core import Structure

from polaronflow import naming
from polaronflow.errors import WorkflowError

if TYPE_CHECKING:
    from jobflow import Job

__all__ = [
    "DEFAULT_MAX_RELAXATIONS",
    "DEFAULT_VOLUME_TOLERANCE",
    "VERDICT_FILE",
    "CellRelaxResult",
    "CellRelaxStep",
    "ConvergedRelaxMaker",
    "cell_relax_check",
]

#: |ΔV/V| between the start and the end of one relaxation below which the cell counts as
#: relaxed (our choice: 0.5 %, the brief of issue 14; atomate2 relaxes twice regardless).
DEFAULT_VOLUME_TOLERANCE = 0.005
#: The most relaxations of one loop before it fails (our choice).
DEFAULT_MAX_RELAXATIONS = 5
#: The loop's verdict, written into the folder of its last relaxation.
VERDICT_FILE = "cell_relaxation.json"


class CellRelaxStep(BaseModel):
    """One relaxation of the loop."""

    relaxation: int = Field(description="1 for the first relaxation, n for the n-th.")
    job_name: str = Field(description="Name of the relaxation job.")
    volume_start: float = Field(description="Cell volume the relaxation started from (Å^3).")
    volume_end: float = Field(description="Relaxed cell volume (Å^3).")
    volume_change: float = Field(
        description="(volume_end - volume_start) / volume_start (fraction, signed)."
    )
    dir_name: str | None = Field(default=None, description="Run folder of the relaxation.")


class CellRelaxResult(BaseModel):
    """Outcome of a converged-volume relaxation loop."""

    label: str = Field(description="Name of the loop (its first relaxation).")
    converged: bool = Field(description="Whether the last |ΔV/V| is below the tolerance.")
    volume_tolerance: float = Field(description="Tolerance on |ΔV/V| (fraction).")
    max_relaxations: int = Field(description="Cap on the number of relaxations.")
    relaxations: int = Field(description="Relaxations run.")
    volume: float = Field(description="Volume of the final cell (Å^3).")
    volume_change: float = Field(description="ΔV/V of the last relaxation (fraction, signed).")
    structure: Structure = Field(description="The last relaxation's relaxed structure.")
    dir_name: str | None = Field(description="Run folder of the last relaxation.")
    history: list[CellRelaxStep] = Field(description="Every relaxation, in run order.")

    def verdict(self) -> dict[str, Any]:
        """The JSON-able verdict written as :data:`VERDICT_FILE` (no structure)."""
        return {
            "generator": "polaronflow",
            **self.model_dump(mode="json", exclude={"structure"}),
        }


@dataclass
class ConvergedRelaxMaker(Maker):
    """Relax a cell again from its CONTCAR until its volume changes by less than a tolerance.

    The relaxations are made from :attr:`relax_maker`, a VASP relaxation maker held as an
    attribute; the checks receive this maker as an argument, so jobflow's nested
    ``update_maker_kwargs`` — what atomate2's powerups such as ``update_user_incar_settings``
    use — reaches the relaxations made at run time too (as for the k-point loop).

    Parameters
    ----------
    name
        Name of the first relaxation; the restarts are ``{name}-2`` ..., the checks
        ``{name}-check``.
    relax_maker
        The VASP relaxation maker (ISIF 3), e.g. from
        :func:`polaronflow.workflows.vasp.makers.maker_from_spec`; any maker with ``name`` and
        ``make(structure, prev_dir=...)`` returning an output with ``structure`` and
        ``dir_name`` works.
    volume_tolerance
        |ΔV/V| (fraction) of one relaxation below which the loop ends (default 0.5 %).
    max_relaxations
        The most relaxations before the loop fails (>= 2).
    """

    name: str = naming.UNIT_RELAX
    relax_maker: Maker | None = None
    volume_tolerance: float = DEFAULT_VOLUME_TOLERANCE
    max_relaxations: int = DEFAULT_MAX_RELAXATIONS
    record_fields: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tol = self.volume_tolerance
        if isinstance(tol, bool) or not (
            isinstance(tol, int | float) and math.isfinite(tol) and 0 < tol < 1
        ):
            raise WorkflowError(f"volume_tolerance must be a fraction in (0, 1), got {tol!r}")
        cap = self.max_relaxations
        if isinstance(cap, bool) or not (isinstance(cap, int) and cap >= 2):
            raise WorkflowError(f"max_relaxations must be an integer >= 2, got {cap!r}")
        if self.relax_maker is None:
            from polaronflow.workflows.vasp.makers import ScanURelaxMaker
            from polaronflow.workflows.vasp.sets import ScanUSetGenerator

            self.relax_maker = ScanURelaxMaker(
                name=self.name, input_set_generator=ScanUSetGenerator(calc="relax", isif=3)
            )

    def relax_job(self, structure: Structure, relaxation: int, prev_dir: Any = None) -> Job:
        """The ``relaxation``-th relaxation (named :func:`naming.relax_restart_name`)."""
        from polaronflow.workflows.vasp.makers import make_job
        from polaronflow.workflows.vasp.spec import RECORD_KEY

        name = naming.relax_restart_name(self.name, relaxation)
        template = self.relax_maker
        extra = getattr(template, "write_additional_data", None)
        if extra is None:  # any maker (tests, other codes)
            return dataclasses.replace(template, name=name).make(structure, prev_dir=prev_dir)
        record = dict(extra.get(RECORD_KEY) or {})
        record.update(
            job_name=name,
            relaxation=relaxation,
            restart_of=self.name if relaxation > 1 else None,
            volume_tolerance=self.volume_tolerance,
            max_relaxations=self.max_relaxations,
            **self.record_fields,
        )
        maker = dataclasses.replace(
            template, name=name, write_additional_data={**extra, RECORD_KEY: record}
        )
        return make_job(maker, structure, prev_dir=prev_dir)

    def make(self, structure: Structure, prev_dir: Any = None) -> Flow:
        """Return the first relaxation and its check (the check adds the restarts).

        Parameters
        ----------
        structure
            The start cell.
        prev_dir
            A previous run folder for the first relaxation (optional).

        Returns
        -------
        jobflow.Flow
            Named ``name``; its output is the last check's :class:`CellRelaxResult`
            (``output.structure`` and ``output.dir_name`` are the last relaxation's).
        """
        first = self.relax_job(structure, 1, prev_dir)
        check = cell_relax_check(self, structure, [], _point(first, 1))
        check.name = naming.relax_check_name(self.name)
        check.metadata = {
            **(check.metadata or {}),
            "polaronflow": {"role": str(naming.Role.UNIT_RELAX_CHECK), "loop": self.name},
        }
        return Flow([first, check], output=check.output, name=self.name)


def _point(relax: Job, relaxation: int) -> dict[str, Any]:
    return {
        "relaxation": relaxation,
        "job_name": relax.name,
        "structure": relax.output.structure,
        "dir_name": relax.output.dir_name,
    }


def write_verdict(result: CellRelaxResult) -> Path | None:
    """Write ``result``'s verdict into the last relaxation's folder, if it is on this machine."""
    from polaronflow.workflows.vasp.spec import local_path

    folder = local_path(result.dir_name)
    if folder is None or not folder.is_dir():
        return None
    path = folder / VERDICT_FILE
    path.write_text(json.dumps(result.verdict(), indent=2) + "\n")
    return path


@job(name="cell-check")
def cell_relax_check(
    maker: ConvergedRelaxMaker,
    start: Structure,
    history: list[dict[str, Any]],
    new_point: dict[str, Any],
) -> Response:
    """Judge the relaxation just run; finish, or schedule another from its CONTCAR.

    Parameters
    ----------
    maker
        The loop's settings (and its VASP relaxation maker).
    start
        The structure the relaxation just run started from.
    history
        Earlier relaxations (:class:`CellRelaxStep` fields).
    new_point
        The relaxation just run: ``relaxation``, ``job_name``, ``structure`` and ``dir_name``
        (output references resolved by jobflow).

    Returns
    -------
    jobflow.Response
        The :class:`CellRelaxResult` when converged, else a replacement flow.

    Raises
    ------
    WorkflowError
        After ``max_relaxations`` relaxations without convergence (the verdict is written).
    """
    relaxed = new_point["structure"]
    if not isinstance(relaxed, Structure):  # a dict from a store
        relaxed = Structure.from_dict(relaxed)
    v0, v1 = float(start.volume), float(relaxed.volume)
    change = (v1 - v0) / v0
    n = int(new_point["relaxation"])
    step = CellRelaxStep(
        relaxation=n,
        job_name=new_point["job_name"],
        volume_start=v0,
        volume_end=v1,
        volume_change=change,
        dir_name=new_point.get("dir_name"),
    )
    steps = [*(CellRelaxStep(**h) for h in history), step]
    converged = abs(change) < maker.volume_tolerance
    result = CellRelaxResult(
        label=maker.name,
        converged=converged,
        volume_tolerance=maker.volume_tolerance,
        max_relaxations=maker.max_relaxations,
        relaxations=n,
        volume=v1,
        volume_change=change,
        structure=relaxed,
        dir_name=step.dir_name,
        history=steps,
    )
    if converged:
        write_verdict(result)
        return Response(output=result)
    if n >= maker.max_relaxations:
        write_verdict(result)
        changes = ", ".join(f"{s.volume_change * 100:+.2f} %" for s in steps)
        raise WorkflowError(
            f"cell relaxation {maker.name} not converged after {n} relaxations: the volume "
            f"still changed by {change * 100:+.2f} % (tolerance {maker.volume_tolerance * 100:g} "
            f"%; changes {changes}); raise max_relaxations or check the runs"
        )
    following = maker.relax_job(relaxed, n + 1, prev_dir=step.dir_name)
    check = cell_relax_check(
        maker, relaxed, [s.model_dump() for s in steps], _point(following, n + 1)
    )
    check.name = naming.relax_check_name(maker.name)
    check.metadata = {
        **(check.metadata or {}),
        "polaronflow": {"role": str(naming.Role.UNIT_RELAX_CHECK), "loop": maker.name},
    }
    return Response(replace=Flow([following, check], output=check.output))
