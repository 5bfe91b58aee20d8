"""k-point convergence of a reference's total energy (a dynamic jobflow loop).

The paper converged the MgO, hcp Mg and O2 total energies in k-point density to
< 0.02 meV/atom. :class:`KPointConvergenceMaker` runs a static at the mesh of a real-space
length L (``n_i = max(1, round(L / |a_i|))``, see
:func:`polaronflow.workflows.vasp.sets.kpoint_mesh`),
then a checking job compares the last two energies per atom; if they differ by more than the
tolerance it replaces itself (``Response(replace=...)``) by a static at the next denser mesh
and a new check. A molecule in a box (``properties["molecule"]``) is Γ-only: one static.
After ``max_steps`` statics without convergence the check fails with a
:class:`~polaronflow.errors.WorkflowError` naming the reference and the last energy change.

Job names: the checks are ``{name}-kconv`` (the converged result is the output of the last
one); the statics are ``{name}-kconv-k{n1}x{n2}x{n3}``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobflow import Flow, Maker, Response, job
from pydantic import BaseModel, Field

from polaronflow import naming
from polaronflow.errors import WorkflowError
from polaronflow.workflows.campaign.planning import DEFAULT_TOLERANCE, KPointConvergencePlan
from polaronflow.workflows.vasp.makers import maker_from_spec
from polaronflow.workflows.vasp.sets import kpoint_mesh
from polaronflow.workflows.vasp.spec import job_record

if TYPE_CHECKING:
    from jobflow import Job
    from pymatgen.core import Structure

__all__ = [
    "DEFAULT_TOLERANCE",
    "KPointConvergenceMaker",
    "KPointConvergenceResult",
    "KPointStep",
    "kpoint_convergence_check",
]


class KPointStep(BaseModel):
    """One static of the convergence loop."""

    mesh: tuple[int, int, int] = Field(description="Γ-centred mesh subdivisions.")
    length: float | None = Field(description="Real-space length L that gave the mesh (Å).")
    energy_per_atom: float = Field(description="Total energy per atom (eV/atom).")
    job_name: str = Field(description="Name of the static job.")
    dir_name: str | None = Field(default=None, description="Run folder of the static.")


class KPointConvergenceResult(BaseModel):
    """Outcome of a k-point convergence loop."""

    label: str = Field(description="Name prefix of the loop, e.g. 'ref-MgO'.")
    converged: bool = Field(description="Whether the last two energies agree within tolerance.")
    molecule: bool = Field(description="True for a molecule in a box (Γ only, one static).")
    mesh: tuple[int, int, int] = Field(description="The converged (last) Γ-centred mesh.")
    energy_per_atom: float = Field(description="Energy per atom at the converged mesh (eV/atom).")
    n_atoms: int = Field(description="Atoms in the cell.")
    energy: float = Field(description="Total energy of the cell at the converged mesh (eV).")
    delta_energy_per_atom: float | None = Field(
        description="|ΔE| per atom between the last two meshes (eV/atom); None for a molecule."
    )
    tolerance: float = Field(description="Convergence tolerance (eV/atom).")
    dir_name: str | None = Field(description="Run folder of the converged static.")
    history: list[KPointStep] = Field(description="Every static of the loop, in run order.")


def next_length(structure: Structure, length: float, step: float) -> tuple[float, tuple[int, ...]]:
    """Return the first length ``length + k*step`` (k >= 1) whose mesh is denser.

    Parameters
    ----------
    structure
        The cell.
    length
        The current length L (Å).
    step
        The increment (Å).

    Returns
    -------
    tuple
        The new length and its mesh.
    """
    current = kpoint_mesh(structure, length)
    new = length
    for _ in range(1000):
        new += step
        mesh = kpoint_mesh(structure, new)
        if mesh != current and all(a >= b for a, b in zip(mesh, current, strict=True)):
            return new, mesh
    raise WorkflowError(f"no denser k-point mesh found above L = {length} Å")  # pragma: no cover


@dataclass
class KPointConvergenceMaker(KPointConvergencePlan, Maker):
    """Converge a total energy in k-point density (fields: :class:`KPointConvergencePlan`).

    The statics are made at run time, one mesh after another, from :attr:`static_maker` (a
    VASP static maker held as an attribute, built from ``static_generator`` when not given).
    Because the maker is an attribute of this maker, which is an argument of every check job,
    jobflow's nested ``update_maker_kwargs`` — what atomate2's powerups such as
    ``update_user_incar_settings`` use — reaches the statics made at run time too.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.static_maker is None:
            spec = self.static_spec(naming.kpoint_static_name(self.name, (1, 1, 1)), (1, 1, 1))
            self.static_maker = maker_from_spec(
                spec, self.walltime, self.vasp_cmd, self.potcar_spec
            )

    def static_job(self, structure: Structure, mesh: tuple[int, ...], length: float | None) -> Job:
        """The static at ``mesh`` (named ``{name}-kconv-k{n1}x{n2}x{n3}``)."""
        name = naming.kpoint_static_name(self.name, mesh)
        record = job_record(
            name,
            str(naming.Role.KPOINT_STATIC),
            mesh=list(mesh),
            kpoint_length=length,
            **self.record_fields,
        )
        template = self.static_maker
        generator = getattr(template, "input_set_generator", None)
        if generator is None:  # any maker with a kpoint_mesh field (tests, other codes)
            return dataclasses.replace(template, name=name, kpoint_mesh=tuple(mesh)).make(structure)
        from polaronflow.workflows.vasp.makers import make_job
        from polaronflow.workflows.vasp.spec import RECORD_KEY

        molecule = generator.molecule if self.molecule is None else self.molecule
        maker = dataclasses.replace(
            template,
            name=name,
            input_set_generator=dataclasses.replace(
                generator, kpoint_mesh=tuple(mesh), molecule=molecule
            ),
            write_additional_data={**template.write_additional_data, RECORD_KEY: record},
        )
        return make_job(maker, structure)

    def make(self, structure: Structure) -> Job:
        """Return the first check job (it schedules the statics itself).

        Parameters
        ----------
        structure
            The reference structure (relaxed or not).

        Returns
        -------
        jobflow.Job
            The ``{name}-kconv`` job; its final output is a :class:`KPointConvergenceResult`.
        """
        first = kpoint_convergence_check(self, structure, [], None)
        first.name = naming.kpoint_loop_name(self.name)
        return first


def _point(static: Job, mesh: tuple[int, ...], length: float | None) -> dict[str, Any]:
    return {
        "mesh": list(mesh),
        "length": length,
        "energy_per_atom": static.output.output.energy_per_atom,
        "job_name": static.name,
        "dir_name": static.output.dir_name,
    }


#: The loop's verdict, written into the folder of its last static (read by ``reproduce``).
VERDICT_FILE = "kpoint_convergence.json"


def write_verdict(result: KPointConvergenceResult) -> Path | None:
    """Write ``result``'s verdict into the last static's run folder, if it is on this machine.

    The file says whether the loop converged, its tolerance, the last energy change and every
    mesh with its energy, so a run folder collected on its own still tells whether its energy
    is k-point converged.
    """
    from polaronflow.workflows.vasp.spec import local_path

    folder = local_path(result.dir_name)
    if folder is None or not folder.is_dir():
        return None
    verdict = {
        "generator": "polaronflow",
        "label": result.label,
        "converged": result.converged,
        "molecule": result.molecule,
        "tolerance": result.tolerance,
        "delta_energy_per_atom": result.delta_energy_per_atom,
        "mesh": list(result.mesh),
        "meshes": [list(s.mesh) for s in result.history],
        "energies_per_atom": [s.energy_per_atom for s in result.history],
    }
    path = folder / VERDICT_FILE
    path.write_text(json.dumps(verdict, indent=2) + "\n")
    return path


@job(name="kconv")
def kpoint_convergence_check(
    maker: KPointConvergenceMaker,
    structure: Structure,
    history: list[dict[str, Any]],
    new_point: dict[str, Any] | None,
) -> Response:
    """One step of the loop: judge the history, then finish or schedule a denser mesh.

    Parameters
    ----------
    maker
        The loop's settings.
    structure
        The reference structure.
    history
        Earlier statics (``KPointStep`` fields).
    new_point
        The static just run (output references resolved by jobflow), or None at the start.

    Returns
    -------
    jobflow.Response
        The :class:`KPointConvergenceResult` when converged, else a replacement flow.
    """
    history = [*history, new_point] if new_point is not None else list(history)
    molecule = maker.is_molecule(structure)
    steps = [KPointStep(**h) for h in history]

    def result(converged: bool, delta: float | None) -> KPointConvergenceResult:
        last = steps[-1]
        return KPointConvergenceResult(
            label=maker.name,
            converged=converged,
            molecule=molecule,
            mesh=last.mesh,
            energy_per_atom=last.energy_per_atom,
            n_atoms=len(structure),
            energy=last.energy_per_atom * len(structure),
            delta_energy_per_atom=delta,
            tolerance=maker.tolerance,
            dir_name=last.dir_name,
            history=steps,
        )

    if steps and molecule:
        out = result(True, None)
        write_verdict(out)
        return Response(output=out)
    deltas = [abs(b.energy_per_atom - a.energy_per_atom) for a, b in itertools.pairwise(steps)]
    delta = deltas[-1] if deltas else None
    recent = deltas[-maker.consecutive :]
    if len(recent) == maker.consecutive and all(d < maker.tolerance for d in recent):
        out = result(True, delta)
        write_verdict(out)
        return Response(output=out)
    if len(steps) >= maker.max_steps:
        write_verdict(result(False, delta))
        raise WorkflowError(
            f"k-point convergence of {maker.name} not reached after {len(steps)} meshes: last "
            f"|dE| = {delta * 1000:.4f} meV/atom > {maker.tolerance * 1000:.4f} meV/atom "
            f"(meshes {', '.join('x'.join(map(str, s.mesh)) for s in steps)}); raise max_steps "
            "or check the runs"
        )
    if not steps:
        length: float | None = None if molecule else maker.start_length
        mesh = maker.first_mesh(structure)
    else:
        length, mesh = next_length(structure, steps[-1].length, maker.length_step)
    static = maker.static_job(structure, mesh, length)
    check = kpoint_convergence_check(maker, structure, history, _point(static, mesh, length))
    check.name = naming.kpoint_loop_name(maker.name)
    return Response(replace=Flow([static, check], output=check.output))
