"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "vasp-corpus"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The real-VASP corpus in ../shared/vasp-corpus; skips when absent."""
    if not CORPUS.is_dir():
        pytest.skip(f"VASP corpus not present at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
def gamma_wo3():
    from polaronflow.structures.host import gamma_wo3 as build

    return build()


@pytest.fixture(scope="session")
def wo3_supercell(gamma_wo3):
    from polaronflow.structures.host import make_supercell

    return make_supercell(gamma_wo3, (2, 2, 2))
