"""A light description of one VASP job: name, input-set generator, record, hand-offs.

Planning (``polaronflow inputs``) works on :class:`VaspJobSpec` objects only, so a dry run
never imports atomate2's job machinery, emmet or custodian (seconds of start-up); the atomate2
maker is built from a spec when a Flow is made (:meth:`VaspJobSpec.maker`).

Every polaronflow VASP job writes ``polaronflow.json`` (the spec's :attr:`record`) into its
run folder via atomate2's ``write_additional_data``; atomate2's task document then holds it
as ``additional_json["polaronflow"]`` and the job's metadata as ``metadata["polaronflow"]``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from atomate2.vasp.jobs.base import BaseVaspMaker

    from polaronflow.workflows.vasp.sets import ScanUSetGenerator

#: Key of the record in ``write_additional_data`` (":" becomes "." — FireWorks forbids "."
#: in keys), so the file in the run folder is ``polaronflow.json``.
RECORD_KEY = "polaronflow:json"
#: File name of the record in a run (or dry-run) folder.
RECORD_FILE = "polaronflow.json"
#: Default bond-distortion seed of a re-seeded retry (+3 % on the seed W's six W–O bonds):
#: a fresh start from moments alone tends to delocalise again at the same U.
DEFAULT_RESEED_STRETCH = 0.03


def job_record(name: str, role: str, **fields: Any) -> dict[str, Any]:
    """Return the record stored with a job (``polaronflow.json`` and job metadata).

    Parameters
    ----------
    name
        The job name (e.g. ``mg-ramp-u9``).
    role
        What the job is: ``unit-relax``, ``supercell-relax``, ``supercell-static``,
        ``ramp-step``, ``ramp-static``, ``reference-relax``, ``kpoint-convergence``.
    **fields
        Further JSON-able facts: ``u_schedule`` (list, eV), ``u`` (eV), ``step``, ``isif``,
        ``nupdown``, ``ion``, ``wavecar_from`` ...

    Returns
    -------
    dict
        A JSON-able mapping whose ``generator`` is ``"polaronflow"``.
    """
    record: dict[str, Any] = {"generator": "polaronflow", "job_name": name, "role": role}
    record.update(fields)
    return record


@dataclass
class VaspJobSpec:
    """One VASP job before it becomes an atomate2 maker.

    Parameters
    ----------
    name
        Job name (also the dry-run folder name).
    calc
        ``"relax"`` or ``"static"`` (which atomate2 maker class).
    generator
        The configured :class:`~polaronflow.workflows.vasp.sets.ScanUSetGenerator`.
    record
        What is stored with the job (:func:`job_record`).
    copy_wavecar
        Copy the previous run's WAVECAR into the run folder (ramp hand-off).
    """

    name: str
    calc: Literal["relax", "static"]
    generator: ScanUSetGenerator
    record: dict[str, Any] = field(default_factory=dict)
    copy_wavecar: bool = False

    def with_generator(self, **updates: Any) -> VaspJobSpec:
        """A copy whose generator has ``updates`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, generator=dataclasses.replace(self.generator, **updates))

    def maker(
        self,
        walltime: int | None = None,
        vasp_cmd: str | None = None,
        potcar_spec: bool = False,
    ) -> BaseVaspMaker:
        """Build the atomate2 maker (imports atomate2's job machinery and custodian).

        Parameters
        ----------
        walltime
            Wall time (s) for custodian's WalltimeHandler, or None.
        vasp_cmd
            VASP command, or None for atomate2's ``VASP_CMD``.
        potcar_spec
            Write POTCAR.spec instead of POTCAR in the run folder.

        Returns
        -------
        atomate2.vasp.jobs.base.BaseVaspMaker
            A :class:`~polaronflow.workflows.vasp.makers.ScanURelaxMaker` or ``ScanUStaticMaker``.
        """
        from polaronflow.workflows.vasp.handlers import run_vasp_kwargs
        from polaronflow.workflows.vasp.makers import ScanURelaxMaker, ScanUStaticMaker

        cls = ScanURelaxMaker if self.calc == "relax" else ScanUStaticMaker
        # A fresh generator: one used for a dry run still holds that run's structure, which
        # would otherwise be serialised into every FireWorks spec.
        generator = dataclasses.replace(self.generator, structure=None)
        return cls(
            name=self.name,
            input_set_generator=generator,
            run_vasp_kwargs=run_vasp_kwargs(walltime, vasp_cmd),
            copy_vasp_kwargs={"additional_vasp_files": ("WAVECAR",)} if self.copy_wavecar else {},
            write_input_set_kwargs={"potcar_spec": True} if potcar_spec else {},
            write_additional_data={RECORD_KEY: dict(self.record)},
        )
