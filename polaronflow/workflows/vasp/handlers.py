"""The custodian error handlers used for every polaronflow VASP job.

atomate2's default set is tuned for Materials Project high-throughput runs. Two of its handlers
change the smearing method, which polaron cells must never see (PAPER.md §1: ``ISMEAR = 0``,
small SIGMA; an automatic switch to tetrahedron or Methfessel–Paxton smearing would smear the
occupied in-gap polaron states):

* ``IncorrectSmearingHandler`` sets ``ISMEAR = 2`` (Methfessel–Paxton) when a relaxation with
  ``ISMEAR = -5`` looks metallic — excluded.
* ``KspacingMetalHandler`` (and its ``ScanMetalHandler`` alias) shrinks ``KSPACING`` for metals;
  polaronflow always writes a KPOINTS file, so it can only do harm — excluded.

Kept (each only ever sets ``ISMEAR = 0`` if it touches smearing at all):
``VaspErrorHandler`` (the catalogue of VASP error messages), ``MeshSymmetryErrorHandler``,
``UnconvergedErrorHandler`` and ``NonConvergingErrorHandler`` (ALGO/mixing changes for hard
SCAN+U SCF cycles in 256-atom spin-polarised cells), ``PotimErrorHandler`` (large ionic steps
from seeded, stretched starts), ``PositiveEnergyErrorHandler``, ``FrozenJobErrorHandler`` (hung
MPI jobs), ``StdErrHandler`` (memory / MPI failures), ``LargeSigmaHandler`` (lowers SIGMA if the
smearing entropy is too large; keeps ``ISMEAR = 0``), and ``WalltimeHandler`` when a wall time
is configured (writes STOPCAR in time so the run can be continued from its CONTCAR).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from custodian.custodian import ErrorHandler, Validator

#: Handlers deliberately left out of atomate2's default set, with the reason.
EXCLUDED_HANDLERS: dict[str, str] = {
    "IncorrectSmearingHandler": "switches ISMEAR to 2 (Methfessel-Paxton) for cells it thinks "
    "are metallic",
    "KspacingMetalHandler": "adjusts KSPACING for metals; polaronflow writes explicit KPOINTS",
    "ScanMetalHandler": "alias of KspacingMetalHandler",
}


def polaron_handlers(walltime: int | None = None) -> list[ErrorHandler]:
    """Return the custodian handlers for large SCAN+U spin-polarised cells.

    Parameters
    ----------
    walltime
        The job's wall time (s); adds a ``WalltimeHandler`` when given.

    Returns
    -------
    list of custodian.custodian.ErrorHandler
        New handler instances (see the module docstring for the choice).
    """
    from custodian.vasp.handlers import (
        FrozenJobErrorHandler,
        LargeSigmaHandler,
        MeshSymmetryErrorHandler,
        NonConvergingErrorHandler,
        PositiveEnergyErrorHandler,
        PotimErrorHandler,
        StdErrHandler,
        UnconvergedErrorHandler,
        VaspErrorHandler,
        WalltimeHandler,
    )

    handlers: list[ErrorHandler] = [
        VaspErrorHandler(),
        MeshSymmetryErrorHandler(),
        UnconvergedErrorHandler(),
        NonConvergingErrorHandler(),
        PotimErrorHandler(),
        PositiveEnergyErrorHandler(),
        FrozenJobErrorHandler(),
        StdErrHandler(),
        LargeSigmaHandler(),
    ]
    if walltime is not None:
        handlers.append(WalltimeHandler(wall_time=int(walltime)))
    return handlers


def polaron_validators() -> list[Validator]:
    """Return custodian's validators (a complete vasprun.xml, the output files present)."""
    from custodian.vasp.validators import VaspFilesValidator, VasprunXMLValidator

    return [VasprunXMLValidator(), VaspFilesValidator()]


def run_vasp_kwargs(walltime: int | None = None, vasp_cmd: str | None = None) -> dict[str, Any]:
    """Return the ``run_vasp_kwargs`` every polaronflow VASP maker is given.

    Parameters
    ----------
    walltime
        The job's wall time (s), or None.
    vasp_cmd
        A VASP command; None keeps atomate2's ``VASP_CMD`` setting.

    Returns
    -------
    dict
        ``handlers`` and ``validators`` (plus ``vasp_cmd`` when given) for atomate2's
        ``run_vasp``.
    """
    kwargs: dict[str, Any] = {
        "handlers": polaron_handlers(walltime),
        "validators": polaron_validators(),
    }
    if vasp_cmd:
        kwargs["vasp_cmd"] = vasp_cmd
    return kwargs
