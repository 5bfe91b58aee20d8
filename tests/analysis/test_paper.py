"""Layer 1 of the reproduction tests: what needs no DFT (PAPER.md §2 arithmetic check)."""

from __future__ import annotations

import pytest

from polaronflow.analysis.paper import (
    PAPER_VALUES,
    compare_values,
    paper_arithmetic,
    paper_value,
)


@pytest.fixture(scope="module")
def arithmetic():
    return {line.label: line for line in paper_arithmetic()}


def test_pressure_term_per_half_o2(arithmetic):
    line = arithmetic["O2 pressure term per ½ O2"]
    assert line.value == pytest.approx(-0.0200, abs=5e-5)


def test_eq1_with_pressure_term_is_consistent(arithmetic):
    line = arithmetic["Mg + ½ O2 → MgO with the pressure term"]
    assert round(line.value, 2) == -6.14
    assert line.verdict == "consistent"
    kj = arithmetic["Mg + ½ O2 → MgO with the pressure term, per mole"]
    assert round(kj.value) == -592 and kj.verdict == "consistent"


def test_eq2_printed_value_is_flagged_inconsistent(arithmetic):
    line = arithmetic["Mg(WO3)64 + ½ O2 → MgO + (WO3)64 with the pressure term"]
    assert round(line.value, 2) == -2.54  # −2.56 + 0.020, not the printed −2.57
    assert line.printed == -2.57
    assert line.verdict == "inconsistent"
    assert "inconsistent" in line.note


def test_lattice_deviation_from_the_papers_own_cells(arithmetic):
    line = arithmetic["largest deviation of the paper's relaxed cell from experiment"]
    assert round(line.value, 1) == 2.6 and line.verdict == "consistent"


def test_other_conditions_change_the_arithmetic():
    # at pO2 = P0 the pressure term vanishes: the arithmetic is computed, not looked up
    lines = {line.label: line for line in paper_arithmetic(temperature=298.15, p_o2=1.0)}
    assert lines["O2 pressure term per ½ O2"].value == 0.0


def test_x_is_one_in_64(wo3_supercell):
    from polaronflow.structures.doping import insert_cation

    assert insert_cation(wo3_supercell, "Mg").x == pytest.approx(1 / 64)


def test_compare_values_verdicts():
    rows = {
        r.key: r for r in compare_values({"mg_polaron1_moment": 0.70, "mg_polaron2_moment": 0.70})
    }
    assert rows["mg_polaron1_moment"].verdict == "reproduced"
    assert rows["mg_polaron1_moment"].delta == pytest.approx(0.02)
    assert rows["mg_polaron2_moment"].verdict == "differs"
    assert rows["dE_mgo_formation"].verdict == "missing"
    assert len(rows) == len(PAPER_VALUES)


def test_every_paper_value_has_tolerance_and_reason():
    for item in PAPER_VALUES:
        assert item.tolerance >= 0 and item.why and item.where
    with pytest.raises(KeyError, match="known"):
        paper_value("nope")


def test_synthetic_values_never_read_reproduced():
    values = {"mg_polaron1_moment": 0.70, "mg_polaron2_moment": 0.70, "mg_polaron_plane": "(100)"}
    rows = {r.key: r for r in compare_values(values, synthetic=True)}
    assert rows["mg_polaron1_moment"].verdict == "by construction (synthetic)"
    assert rows["mg_polaron_plane"].verdict == "by construction (synthetic)"
    assert rows["mg_polaron2_moment"].verdict == "differs"
    assert all(r.verdict != "reproduced" for r in rows.values())
