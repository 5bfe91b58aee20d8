from __future__ import annotations

import pytest
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from polaronflow.errors import ReferencePhaseError
from polaronflow.structures.references import reference_structure, references_for_ion


def test_mgo_rock_salt():
    s = reference_structure("MgO")
    assert s.composition.reduced_formula == "MgO"
    assert SpacegroupAnalyzer(s).get_space_group_symbol() == "Fm-3m"
    assert s.get_distance(0, 1) == pytest.approx(4.212 / 2, abs=1e-6)


def test_mg_hcp():
    s = reference_structure("Mg")
    assert len(s) == 2
    assert SpacegroupAnalyzer(s).get_space_group_symbol() == "P6_3/mmc"
    assert s.lattice.c == pytest.approx(5.211)


def test_o2_triplet_in_non_cubic_box():
    s = reference_structure("O2")
    assert s.properties["molecule"] is True
    assert s.get_distance(0, 1) == pytest.approx(1.2075, abs=1e-6)
    abc = s.lattice.abc
    assert min(abc) >= 12.0 and len(set(abc)) == 3
    assert sum(s.site_properties["magmom"]) == pytest.approx(2.0)


def test_references_for_mg():
    refs = references_for_ion("Mg")
    assert set(refs) == {"Mg", "MgO", "O2"}


@pytest.mark.parametrize("ion", ["Li", "Na", "K", "Ca", "Zn", "H"])
def test_other_ions_have_metal_and_oxide(ion):
    refs = references_for_ion(ion)
    assert len(refs) == 3


def test_no_prototype_asks_for_a_file():
    with pytest.raises(ReferencePhaseError, match="structure file"):
        references_for_ion("Al")
    with pytest.raises(ReferencePhaseError, match="no reference phases known"):
        references_for_ion("Xx")


def test_metal_flag_is_set_on_the_metal_phases_only():
    from polaronflow.structures.references import METAL_PHASES, REFERENCE_PHASES, is_metal_phase

    assert {"Mg", "Li", "Na", "K", "Ca", "Zn", "Al"} == METAL_PHASES
    for name in REFERENCE_PHASES:
        s = reference_structure(name)
        assert s.properties["metal"] is (name in METAL_PHASES), name
        assert is_metal_phase(s) is (name in METAL_PHASES)
        if name in METAL_PHASES:
            # a metal phase is the element itself
            assert [el.symbol for el in s.composition.elements] == [name]


def test_fixed_total_moment_only_for_o2():
    from polaronflow.structures.references import REFERENCE_PHASES

    moments = {n: reference_structure(n).properties["nupdown"] for n in REFERENCE_PHASES}
    assert moments.pop("O2") == 2
    assert set(moments.values()) == {None}
