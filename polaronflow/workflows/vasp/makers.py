"""VASP job makers (atomate2 ``BaseVaspMaker``) with the paper's SCAN+U input sets.

Every polaronflow VASP job writes a ``polaronflow.json`` into its run folder (atomate2's
``write_additional_data``); atomate2's task document then carries it as
``additional_json["polaronflow"]`` and the same record is the jobflow job's ``metadata``.
It holds the job name, its role, the U schedule and the step's U (see
:func:`polaronflow.workflows.vasp.spec.job_record`),
so a run folder says what it was even outside the JobStore.

After VASP ends the jobs run :func:`polaronflow.workflows.vasp.postrun.finish_vasp_job`
instead of atomate2's parse: the same task document but for emmet's ``dos_properties``, built
from a vasprun.xml without the projection blocks (tens of seconds and GB less on a 257-atom
LORBIT run), plus the fast readers' analysis summary in
``additional_json["polaronflow_summary"]``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from atomate2.vasp.jobs.base import BaseVaspMaker, vasp_job
from atomate2.vasp.sets.base import VaspInputGenerator

from polaronflow.workflows.vasp.handlers import run_vasp_kwargs
from polaronflow.workflows.vasp.postrun import run_vasp_job
from polaronflow.workflows.vasp.sets import ScanUSetGenerator
from polaronflow.workflows.vasp.spec import RECORD_KEY, VaspJobSpec

if TYPE_CHECKING:
    from pathlib import Path

    from jobflow import Job, Response
    from pymatgen.core import Structure


@dataclass
class ScanURelaxMaker(BaseVaspMaker):
    """A SCAN+U relaxation (ISIF and U set on the generator).

    Parameters
    ----------
    name
        Job name.
    input_set_generator
        A :class:`~polaronflow.workflows.vasp.sets.ScanUSetGenerator` with ``calc="relax"``.
    run_vasp_kwargs
        Custodian settings; default handlers from :mod:`polaronflow.workflows.vasp.handlers`.
    """

    name: str = "scan-u-relax"
    input_set_generator: VaspInputGenerator = field(
        default_factory=lambda: ScanUSetGenerator(calc="relax")
    )
    run_vasp_kwargs: dict = field(default_factory=run_vasp_kwargs)

    @vasp_job
    def make(self, structure: Structure, prev_dir: str | Path | None = None) -> Response:
        """Run VASP as atomate2 does, then the lean post-processing (module docstring)."""
        return run_vasp_job(self, structure, prev_dir=prev_dir)


@dataclass
class ScanUStaticMaker(BaseVaspMaker):
    """A SCAN+U static run (DOS with LORBIT 11, dense NEDOS, CHGCAR).

    Parameters
    ----------
    name
        Job name.
    input_set_generator
        A :class:`~polaronflow.workflows.vasp.sets.ScanUSetGenerator` with ``calc="static"``.
    run_vasp_kwargs
        Custodian settings; default handlers from :mod:`polaronflow.workflows.vasp.handlers`.
    """

    name: str = "scan-u-static"
    input_set_generator: VaspInputGenerator = field(
        default_factory=lambda: ScanUSetGenerator(calc="static")
    )
    run_vasp_kwargs: dict = field(default_factory=run_vasp_kwargs)

    @vasp_job
    def make(self, structure: Structure, prev_dir: str | Path | None = None) -> Response:
        """Run VASP as atomate2 does, then the lean post-processing (module docstring)."""
        return run_vasp_job(self, structure, prev_dir=prev_dir)


def make_job(maker: BaseVaspMaker, structure: Structure, prev_dir: str | Path | None = None) -> Job:
    """Call ``maker.make`` and copy its record into the job's metadata.

    Parameters
    ----------
    maker
        A maker from :meth:`polaronflow.workflows.vasp.spec.VaspJobSpec.maker`.
    structure
        The structure (or an output reference to one).
    prev_dir
        The previous run folder (or a reference), for chained jobs.

    Returns
    -------
    jobflow.Job
        The job.
    """
    new_job = maker.make(structure, prev_dir=prev_dir)
    record = maker.write_additional_data.get(RECORD_KEY)
    if record:
        new_job.metadata = {**(new_job.metadata or {}), "polaronflow": record}
    return new_job


def maker_from_spec(
    spec: VaspJobSpec,
    walltime: int | None = None,
    vasp_cmd: str | None = None,
    potcar_spec: bool = False,
) -> BaseVaspMaker:
    """Build the atomate2 maker of a planned VASP job.

    Parameters
    ----------
    spec
        The planned job (name, relax/static, input-set generator, record, WAVECAR hand-off).
    walltime
        Wall time (s) for custodian's WalltimeHandler, or None.
    vasp_cmd
        VASP command, or None for atomate2's ``VASP_CMD``.
    potcar_spec
        Write POTCAR.spec instead of POTCAR in the run folder.

    Returns
    -------
    atomate2.vasp.jobs.base.BaseVaspMaker
        A :class:`ScanURelaxMaker` or :class:`ScanUStaticMaker`.
    """
    cls = ScanURelaxMaker if spec.calc == "relax" else ScanUStaticMaker
    # A fresh generator: one used for a dry run still holds that run's structure, which
    # would otherwise be serialised into every FireWorks spec.
    generator = dataclasses.replace(spec.generator, structure=None)
    return cls(
        name=spec.name,
        input_set_generator=generator,
        run_vasp_kwargs=run_vasp_kwargs(walltime, vasp_cmd),
        copy_vasp_kwargs={"additional_vasp_files": ("WAVECAR",)} if spec.copy_wavecar else {},
        write_input_set_kwargs={"potcar_spec": True} if potcar_spec else {},
        write_additional_data={RECORD_KEY: dict(spec.record)},
    )
