"""Reproduction checks on a user's finished runs: ``pytest --vasp-runs RUNS``.

Every number the paper reports (``polaronflow.analysis.paper.PAPER_VALUES``) is one test; it
fails when the value computed from the runs is missing or outside its tolerance.  From a clone
of polaronflow ``pytest --vasp-runs RUNS tests/testing/test_reproduction_checks.py`` runs them;
from an installed package
``pytest --vasp-runs RUNS --pyargs polaronflow.testing.reproduction_checks``.
Without ``--vasp-runs`` every check is skipped.
"""

from __future__ import annotations

import pytest

from polaronflow.analysis.paper import PAPER_VALUES


@pytest.fixture(scope="session")
def reproduction(vasp_runs):
    """The reproduction report of the ``--vasp-runs`` campaign (computed once)."""
    from polaronflow.analysis.reproduce import reproduce

    return reproduce(vasp_runs)


@pytest.mark.parametrize("key", [v.key for v in PAPER_VALUES])
def test_paper_value_reproduced(reproduction, key):
    row = next(r for r in reproduction.rows if r.key == key)
    if reproduction.synthetic:
        pytest.fail("these runs are SYNTHETIC (mock-VASP emulator): nothing to reproduce")
    assert row.verdict == "reproduced", (
        f"{row.quantity}: paper {row.paper} {row.unit}, this work {row.this_work} "
        f"(Δ {row.delta}, tolerance ±{row.tolerance}) — {row.verdict}. {row.note}"
    )
