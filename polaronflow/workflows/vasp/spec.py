"""A light description of one VASP job: name, input-set generator, record, hand-offs.

Planning (``polaronflow inputs``) works on :class:`VaspJobSpec` objects only, so a dry run
never imports atomate2's job machinery, emmet or custodian (seconds of start-up); the atomate2
maker is built from a spec when a Flow is made
(:func:`polaronflow.workflows.vasp.makers.maker_from_spec`).

Every polaronflow VASP job writes ``polaronflow.json`` (the spec's :attr:`record`) into its
run folder via atomate2's ``write_additional_data``; atomate2's task document then holds it
as ``additional_json["polaronflow"]`` and the job's metadata as ``metadata["polaronflow"]``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
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


def local_path(dir_name: str | Path | None) -> Path | None:
    """A task document's ``dir_name`` ("host:/abs/path" or "/abs/path") as a local Path.

    Unlike atomate2's ``strip_hostname`` it leaves a path alone whose part after the first
    ":" is not absolute (a relative folder name may contain ":").
    """
    if not dir_name:
        return None
    text = str(dir_name)
    if not text.startswith("/") and ":" in text:
        _, _, rest = text.partition(":")
        if rest.startswith("/"):
            text = rest
    return Path(text)
