"""Test support shipped with the package: the ``mock_vasp`` pytest plugin and the reproduction
checks (``pytest --vasp-runs RUNS``). The emulator itself is :mod:`polaronflow.emulator`; no
production module imports this package.
"""

from __future__ import annotations
