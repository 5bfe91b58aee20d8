from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from polaronflow.errors import DopingError
from polaronflow.structures.doping import ION_ELECTRONS, insert_cation, insert_protons
from polaronflow.structures.sites import cavity_sites, w_shells


def test_mg_in_cavity(wo3_supercell):
    doped = insert_cation(wo3_supercell, "Mg", cavity=3)
    s = doped.structure
    assert s.composition.formula == "Mg1 W64 O192"
    assert doped.dopant_indices == [256]
    assert s.site_properties["dopant"] == [False] * 256 + [True]
    assert doped.electrons_donated == 2
    assert doped.x == pytest.approx(1 / 64)
    assert doped.x_fraction == Fraction(1, 64)
    cav = cavity_sites(wo3_supercell)[3]
    assert np.allclose(s[256].frac_coords, cav.frac_coords)
    shells = w_shells(s, s[256].coords)
    assert [sh.count for sh in shells[:2]] == [8, 24]
    assert 3.0 - 0.01 <= shells[0].d_min and shells[0].d_max <= 3.5 + 0.01
    assert 5.9 - 0.02 <= shells[1].d_min and shells[1].d_max <= 6.6 + 0.01
    assert doped.manifest()["label"] == "Mg_xWO3 (x = 1/64)"


@pytest.mark.parametrize(
    ("ion", "electrons"),
    [("Li", 1), ("Na", 1), ("K", 1), ("Ca", 2), ("Zn", 2), ("Al", 3), ("Mg", 2)],
)
def test_other_ions_donate_nominal_electrons(wo3_supercell, ion, electrons):
    doped = insert_cation(wo3_supercell, ion)
    assert doped.electrons_donated == electrons == ION_ELECTRONS[ion]
    assert doped.structure[doped.dopant_indices[0]].specie.symbol == ion


def test_unknown_ion(wo3_supercell):
    with pytest.raises(DopingError, match="unknown intercalant ion 'Xx'"):
        insert_cation(wo3_supercell, "Xx")


def test_h_as_cation_points_to_protons(wo3_supercell):
    with pytest.raises(DopingError, match="protons"):
        insert_cation(wo3_supercell, "H")


@pytest.mark.parametrize("cavity", [64, -1, "seven"])
def test_cavity_out_of_range(wo3_supercell, cavity):
    with pytest.raises(DopingError, match="cavity"):
        insert_cation(wo3_supercell, "Mg", cavity=cavity)


def _w_indices(s):
    return [i for i, site in enumerate(s) if site.specie.symbol == "W"]


@pytest.mark.parametrize("placement", ["far", "near"])
def test_two_protons(wo3_supercell, placement):
    doped = insert_protons(wo3_supercell, 2, placement)
    s = doped.structure
    assert s.composition.formula == "H2 W64 O192"
    assert doped.electrons_donated == 2
    assert doped.x == pytest.approx(2 / 64)
    assert "x = 1/64" in doped.label  # the paper's H_2x WO3 with x = 1/64
    w = _w_indices(s)
    for h, o in zip(doped.dopant_indices, doped.o_indices, strict=True):
        assert s.get_distance(h, o) == pytest.approx(0.98, abs=1e-6)
        assert min(s.get_distance(h, j) for j in w) > 1.8
    assert s.site_properties["dopant"].count(True) == 2


def test_far_pair_is_farther_than_near_pair(wo3_supercell):
    far = insert_protons(wo3_supercell, 2, "far")
    near = insert_protons(wo3_supercell, 2, "near")
    d_far = far.structure.get_distance(*far.dopant_indices)
    d_near = near.structure.get_distance(*near.dopant_indices)
    assert d_far > 10.0
    assert 2.0 <= d_near < 4.0


def test_explicit_o_indices(wo3_supercell):
    doped = insert_protons(wo3_supercell, 2, o_indices=[70, 100])
    assert doped.o_indices == [70, 100]
    assert doped.placement == "explicit"


@pytest.mark.parametrize(
    ("n", "kwargs", "match"),
    [
        (0, {}, "positive integer"),
        (193, {}, "only 192 bridging O"),
        (2, {"o_indices": [3, 70]}, "not bridging O"),
        (2, {"o_indices": [70, 70]}, "repeat"),
        (2, {"o_indices": [70]}, "1 O indices given for 2 protons"),
        (2, {"placement": "sideways"}, "placement"),
    ],
)
def test_bad_proton_requests(wo3_supercell, n, kwargs, match):
    with pytest.raises(DopingError, match=match):
        insert_protons(wo3_supercell, n, **kwargs)


def test_manifest_reuses_the_cavity_of_the_insertion(wo3_supercell):
    import dataclasses

    from polaronflow.structures.builder import build_doped

    result = build_doped("Mg", cavity=5, supercell=(1, 1, 1), host=wo3_supercell)
    assert result.doped.cavity == cavity_sites(result.host)[5]
    manifest = result.manifest()
    assert manifest["cavity"]["index"] == 5
    # without the kept record (a DopedStructure made by hand) the host is searched again
    result.doped = dataclasses.replace(result.doped, cavity=None)
    assert result.manifest() == manifest
