from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from polaronflow.errors import PolaronSeedError
from polaronflow.structures.doping import insert_cation, insert_protons
from polaronflow.structures.polarons import (
    auto_polaron_seeds,
    enumerate_polaron_configurations,
    seed_polarons,
)


@pytest.fixture(scope="module")
def mg_doped(wo3_supercell):
    return insert_cation(wo3_supercell, "Mg")


def test_seeded_magmom_is_zero_except_on_seeds(mg_doped):
    s = seed_polarons(mg_doped.structure, [5, 40], moment=1.0)
    magmom = np.array(s.site_properties["magmom"])
    assert magmom[5] == magmom[40] == 1.0
    assert np.count_nonzero(magmom) == 2
    assert s.site_properties["polaron_seed"].count(True) == 2
    # the input is not modified
    assert "magmom" not in mg_doped.structure.site_properties


def test_bond_stretch_elongates_the_six_w_o_bonds(mg_doped):
    base = mg_doped.structure
    seeded = seed_polarons(base, [5], stretch=0.03)
    before = sorted(
        n.nn_distance for n in base.get_neighbors(base[5], 2.6) if n.specie.symbol == "O"
    )
    after = sorted(
        n.nn_distance for n in seeded.get_neighbors(seeded[5], 2.8) if n.specie.symbol == "O"
    )
    assert len(before) == len(after) == 6
    assert np.allclose(np.array(after), 1.03 * np.array(before), rtol=1e-6)


@pytest.mark.parametrize(
    ("indices", "kwargs", "match"),
    [
        ([100], {}, "not W sites"),
        ([5, 5], {}, "repeat"),
        ([5], {"moment": float("nan")}, "finite"),
        ([5], {"stretch": 0.5}, "between 0 and 0.2"),
    ],
)
def test_bad_seeds(mg_doped, indices, kwargs, match):
    with pytest.raises(PolaronSeedError, match=match):
        seed_polarons(mg_doped.structure, indices, **kwargs)


def test_auto_seeds_mg_one_in_shell_1_one_in_shell_2(mg_doped):
    seeds = auto_polaron_seeds(mg_doped)
    assert sorted(seeds.shells) == [1, 2]
    assert 3.0 <= seeds.distances[0] <= 3.51
    assert 5.88 <= seeds.distances[1] <= 6.61
    s = mg_doped.structure
    assert s.get_distance(*seeds.w_indices) > 4.6  # not framework neighbours


def test_auto_seeds_protons_near_each_h(wo3_supercell):
    doped = insert_protons(wo3_supercell, 2, "far")
    seeds = auto_polaron_seeds(doped)
    assert len(seeds.w_indices) == 2
    assert seeds.shells == (1, 1)


def test_enumeration_gamma_wo3_counts(mg_doped):
    configs = enumerate_polaron_configurations(mg_doped, shells=(1, 2))
    # 32 W in shells 1+2; one Mg leaves the 256-atom cell without symmetry -> C(32, 2)
    assert sum(c.multiplicity for c in configs) == 32 * 31 // 2
    assert all(len(c.w_indices) == 2 for c in configs)


def _cubic_supercell():
    s = Structure(
        Lattice.cubic(3.78),
        ["W", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]],
    )
    s.make_supercell(4)
    return s


def test_enumeration_removes_symmetry_duplicates_in_cubic_host():
    host = _cubic_supercell()
    doped = insert_cation(host, "Li")  # one electron, Li at a cube centre (site symmetry m-3m)
    configs = enumerate_polaron_configurations(doped, shells=(1,))
    assert len(configs) == 1 and configs[0].multiplicity == 8
    two = enumerate_polaron_configurations(doped, shells=(1,), n_polarons=2)
    # pairs of cube corners: edge, face diagonal, body diagonal
    assert sorted(c.multiplicity for c in two) == [4, 12, 12]
    assert sum(c.multiplicity for c in two) == 28


def test_enumeration_bad_shells(mg_doped):
    with pytest.raises(PolaronSeedError):
        enumerate_polaron_configurations(mg_doped, shells=())
    with pytest.raises(PolaronSeedError, match="exceed"):
        enumerate_polaron_configurations(mg_doped, shells=(1, 2, 3), n_polarons=6)
