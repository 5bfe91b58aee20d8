"""Testing support: the mock-VASP emulator, its scenarios and the ``mock_vasp`` pytest plugin.

Everything the emulator writes is synthetic and carries
:data:`polaronflow.analysis.rundata.SYNTHETIC_MARKER`; see ``docs/emulator.md``.
"""

from __future__ import annotations
