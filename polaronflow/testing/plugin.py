"""pytest plugin: the ``mock_vasp`` fixture runs atomate2 VASP jobs through the emulator.

Registered through the ``pytest11`` entry point, so any project that installs polaronflow
gets the fixture (see :mod:`polaronflow.emulator.mock` for what it patches)::

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

from polaronflow.emulator.mock import MockVasp, install


@pytest.fixture
def mock_vasp(monkeypatch: pytest.MonkeyPatch) -> MockVasp:
    """Run atomate2 VASP jobs through the polaronflow emulator (see module docstring)."""
    state = MockVasp()
    install(monkeypatch, state)
    return state


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("polaronflow")
    group.addoption(
        "--vasp-runs",
        action="store",
        default=None,
        metavar="DIR",
        help="A finished polaronflow campaign (one run folder per job name, as written by "
        "'polaronflow collect' or the demo): run the paper-reproduction checks on it.",
    )


@pytest.fixture(scope="session")
def vasp_runs(pytestconfig: pytest.Config):
    """The ``--vasp-runs`` campaign folder; the test is skipped when the option is not given."""
    from pathlib import Path

    value = pytestconfig.getoption("--vasp-runs")
    if not value:
        pytest.skip("no finished VASP runs given: pass --vasp-runs DIR to check a reproduction")
    path = Path(value)
    if not path.is_dir():
        raise pytest.UsageError(f"--vasp-runs {value}: not a folder")
    return path
