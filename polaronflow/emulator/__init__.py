"""The mock-VASP emulator: format-faithful, synthetic VASP outputs for a job folder.

``run_emulator(folder)`` reads INCAR/KPOINTS/POSCAR/POTCAR(.spec) and writes vasprun.xml,
OUTCAR, OSZICAR, CONTCAR and WAVECAR/CHGCAR stand-ins whose numbers come from a
:class:`~polaronflow.emulator.scenario.Scenario`. ``python -m polaronflow.emulator``
(or the ``polaronflow-mock-vasp`` script) does the same as a command, usable as VASP_CMD.
``write_large_run(dest, ...)`` writes a production-size run for benchmarks.
"""

from __future__ import annotations

from polaronflow.emulator.core import main, run_emulator, write_large_run

__all__ = ["main", "run_emulator", "write_large_run"]
