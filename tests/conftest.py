"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Real VASP outputs vendored with the project (see tests/data/vasp-corpus/README.md).
CORPUS = REPO / "tests" / "data" / "vasp-corpus"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The real-VASP corpus vendored in tests/data/vasp-corpus (part of every clone)."""
    assert CORPUS.is_dir(), f"the vendored VASP corpus is missing at {CORPUS}"
    return CORPUS


@pytest.fixture(scope="session")
def gamma_wo3():
    from polaronflow.structures.host import gamma_wo3 as build

    return build()


@pytest.fixture(scope="session")
def wo3_supercell(gamma_wo3):
    from polaronflow.structures.host import make_supercell

    return make_supercell(gamma_wo3, (2, 2, 2))


@pytest.fixture(scope="session")
def mongo_uri() -> str:
    """URI of the test MongoDB-wire server started by tools/test_mongo.py (``make test``)."""
    import os

    uri = os.environ.get("POLARONFLOW_TEST_MONGO_URI")
    if not uri:
        pytest.skip(
            "no MongoDB test server: POLARONFLOW_TEST_MONGO_URI is unset (run the suite through "
            "'make test', which starts SecantusDB via tools/test_mongo.py)"
        )
    return uri


@pytest.fixture(scope="session")
def secantusd() -> str:
    """Path of the SecantusDB server executable, for tests that start and stop their own."""
    import os

    exe = os.environ.get("POLARONFLOW_SECANTUSD")
    if not exe or not os.access(exe, os.X_OK):
        pytest.skip("POLARONFLOW_SECANTUSD is unset: run the suite through 'make test'")
    return exe
