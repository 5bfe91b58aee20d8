"""``python -m polaronflow.emulator``: the mock VASP as a command."""

from __future__ import annotations

import sys

from polaronflow.emulator.core import main

if __name__ == "__main__":
    sys.exit(main())
