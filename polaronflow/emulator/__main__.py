"""``python -m polaronflow.emulator``: the mock VASP as a command."""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    # VASP empties its output files the moment it starts; do so before the imports below
    # take their second, or a custodian monitor may read the previous run's files meanwhile.
    for _name in ("OUTCAR", "OSZICAR", "vasprun.xml"):
        if Path(_name).is_file():
            Path(_name).write_text("")

    from polaronflow.emulator.core import main

    sys.exit(main())
