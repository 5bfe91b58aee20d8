"""pytest plugin: the ``mock_vasp`` fixture runs atomate2 VASP jobs through the emulator.

Registered through the ``pytest11`` entry point, so any project that installs polaronflow
gets the fixture (see :mod:`polaronflow.testing.mock` for what it patches)::

    def test_flow(mock_vasp, tmp_path):
        mock_vasp.scenario = "paper_like"          # default
        mock_vasp.fault("ramp-u9", "zbrent")       # optional: job-name substring -> fault
        responses = run_locally(flow, create_folders=True)
        assert mock_vasp.runs                       # job folders the emulator ran in

``mock_vasp.mode = "custodian"`` runs atomate2's real ``run_vasp`` (custodian with its
handlers and validators) with the emulator command as ``VASP_CMD``.
"""

from __future__ import annotations

import pytest

from polaronflow.testing.mock import MockVasp, install


@pytest.fixture
def mock_vasp(monkeypatch: pytest.MonkeyPatch) -> MockVasp:
    """Run atomate2 VASP jobs through the polaronflow emulator (see module docstring)."""
    state = MockVasp()
    install(monkeypatch, state)
    return state
