"""Candidate enumeration: exact orbits, pseudo-symmetry classes, cavity orbits, spin states, H."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from polaronflow.errors import InputError
from polaronflow.structures.builder import build_doped
from polaronflow.structures.candidates import (
    CandidateSet,
    candidate_set,
    enumerate_candidates,
    group_by_distances,
    nupdown_states,
    o_site_orbits,
)
from polaronflow.structures.doping import insert_cation
from polaronflow.structures.sites import bridging_oxygens, cavity_sites, w_shells


@pytest.fixture(scope="module")
def mg_set(wo3_supercell) -> CandidateSet:
    return candidate_set(wo3_supercell, "Mg", shells=(1, 2), tolerance=0.3)


@pytest.fixture(scope="module")
def cubic_host() -> Structure:
    """Cubic ReO3-type WO3 (Pm-3m, a = 3.78 Å), 4x4x4: 64 W like the γ-WO3 supercell."""
    s = Structure(
        Lattice.cubic(3.78),
        ["W", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]],
    )
    s.make_supercell(4)
    return s


def _shell_w(structure: Structure, cavity) -> dict[int, tuple[int, float]]:
    out = {}
    for shell in w_shells(structure, cavity.cart_coords)[:2]:
        for w, d in zip(shell.w_indices, shell.distances, strict=True):
            out.setdefault(w, (shell.number, d))
    return out


def test_gamma_wo3_both_cavity_orbits_trivial_site_symmetry(mg_set, wo3_supercell):
    assert [g.cavity_orbit for g in mg_set.groups] == [0, 1]
    cavities = cavity_sites(wo3_supercell)
    for group in mg_set.groups:
        assert cavities[group.cavity_index].orbit == group.cavity_orbit
        assert group.cavity_orbit_size == 32
        # the cavity centre of P2_1/n is a general position: nothing left but the identity
        assert group.site_symmetry_operations == 1
        assert group.n_configurations == group.n_orbits == 32 * 31 // 2
    assert mg_set.n_configurations == 992


def test_gamma_wo3_class_counts(wo3_supercell, mg_set):
    # computed with this code (not from the paper): 496 pairs per cavity orbit
    assert [g.n_classes for g in mg_set.groups] == [63, 61]
    exact = candidate_set(wo3_supercell, "Mg", tolerance=None)
    assert [g.n_classes for g in exact.groups] == [496, 496]
    finer = candidate_set(wo3_supercell, "Mg", tolerance=0.05, cavities=[0])
    assert [g.n_classes for g in finer.groups] == [353]
    assert finer.tolerance == 0.05 and mg_set.tolerance == 0.3


def test_every_class_agrees_within_tolerance_on_recomputed_distances(wo3_supercell, mg_set):
    tol = mg_set.tolerance
    cavities = cavity_sites(wo3_supercell)
    for group in mg_set.groups:
        cav = cavities[group.cavity_index]
        table = _shell_w(wo3_supercell, cav)
        classes = [c for c in mg_set.candidates if c.cavity_index == cav.index and c.nupdown == 0]
        assert len(classes) == group.n_classes
        seen = []
        for cand in classes:
            vectors = []
            for pair in cand.members:
                dists = sorted(table[w][1] for w in pair)
                ww = [wo3_supercell.get_distance(*pair)]
                vectors.append(np.array(dists + ww))
                assert sorted(table[w][0] for w in pair) == cand.shells
                seen.append(tuple(sorted(pair)))
            arr = np.array(vectors)
            # complete linkage: every two members within the tolerance, in every distance
            assert np.max(arr.max(axis=0) - arr.min(axis=0)) <= tol + 1e-9
            assert cand.count == sum(cand.member_multiplicities) == len(cand.members)
            rep = cand.seeds
            assert [s.index for s in rep] == cand.members[0]
            assert all(s.vasp_ion == s.index + 1 for s in rep)
        # the classes partition the 496 pairs of shells 1 and 2
        assert sorted(seen) == sorted(tuple(sorted(p)) for p in combinations(sorted(table), 2))


def test_spin_states_and_moments(mg_set):
    assert mg_set.nupdown == [0, 2]
    assert len(mg_set.candidates) == 2 * mg_set.n_classes
    for cand in mg_set.candidates[:20]:
        moments = [s.moment for s in cand.seeds]
        assert sum(moments) == pytest.approx(cand.nupdown)
        assert cand.id.endswith(f"nupdown{cand.nupdown}")
    assert len({c.id for c in mg_set.candidates}) == len(mg_set.candidates)
    assert nupdown_states(1) == [1]
    assert nupdown_states(3) == [1, 3]
    assert nupdown_states(2, [2]) == [2]
    for bad in ([1], [0, 0], [4], []):
        with pytest.raises(InputError):
            nupdown_states(2, bad)


def test_cubic_host_pairs_collapse_into_few_orbits(cubic_host):
    cset = candidate_set(cubic_host, "Mg", shells=(1, 2), tolerance=None)
    (group,) = cset.groups  # all 64 cavities of the cubic host are one orbit
    assert group.cavity_orbit_size == 64
    assert group.site_symmetry_operations == 48  # m-3m site symmetry of the cube centre
    assert group.n_configurations == 496
    assert group.n_orbits == 20
    classes = [c for c in cset.candidates if c.nupdown == 0]
    assert sum(c.count for c in classes) == 496
    # pairs of cube corners (shell 1): edge (12), face diagonal (12), body diagonal (4)
    corner_pairs = sorted(c.count for c in classes if c.shells == [1, 1])
    assert corner_pairs == [4, 12, 12]
    # symmetry-equivalent configurations really are equivalent: equal sorted distances
    doped = insert_cation(cubic_host, "Mg", 0)
    mg = doped.dopant_indices[0]
    s = doped.structure
    for cand in classes:
        w1, w2 = cand.members[0]
        assert cand.dopant_w_distances == pytest.approx(
            sorted([s.get_distance(mg, w1), s.get_distance(mg, w2)]), abs=1e-4
        )


def test_cubic_distance_classes_merge_only_equal_distances(cubic_host):
    # distances do not tell every orbit apart: some distinct orbits have equal triangles
    cset = candidate_set(cubic_host, "Mg", tolerance=0.01, nupdown=[2])
    (group,) = cset.groups
    assert group.n_orbits == 20 and group.n_classes == 16
    for cand in cset.candidates:
        assert cand.spread < 1e-6
        assert cand.n_orbits == len(cand.members)


def test_group_by_distances_is_complete_linkage():
    items = [((1,), np.array([x]), None) for x in (0.0, 0.04, 0.08, 0.5)]
    assert group_by_distances(items, 0.05) == [[0, 1], [2], [3]]
    assert group_by_distances(items, None) == [[0], [1], [2], [3]]
    # different shells never share a class
    mixed = [((1, 2), np.array([1.0])), ((1, 1), np.array([1.0]))]
    assert len(group_by_distances([(k, v, None) for k, v in mixed], 1.0)) == 2


def test_candidate_rebuilds_with_build_doped(wo3_supercell, mg_set):
    cand = mg_set.candidates[5]
    result = build_doped(host=wo3_supercell, supercell=(1, 1, 1), **cand.build_kwargs())
    assert list(result.seeds.w_indices) == [s.index for s in cand.seeds]
    assert result.doped.cavity_index == cand.cavity_index
    again = build_doped(
        ion="Mg",
        cavity=cand.cavity_index,
        host=wo3_supercell,
        supercell=(1, 1, 1),
        polarons=cand.polarons_spec(),
    )
    assert again.seeds == result.seeds


def test_protons_over_o_site_orbits(wo3_supercell):
    o_idx = [b.o_index for b in bridging_oxygens(wo3_supercell)]
    orbits, _ = o_site_orbits(wo3_supercell, o_idx)
    counts = np.bincount(list(orbits.values()))
    assert counts.tolist() == [32] * 6  # O1..O6 of P2_1/n, 32 each in the supercell
    cset = candidate_set(wo3_supercell, None, protons=2, tolerance=None)
    (group,) = cset.groups
    assert cset.nupdown == [0, 2]
    # 6 O orbits x (far, near), one pair reached twice: 11 distinct arrangements
    assert group.n_orbits == 11 == group.n_classes
    assert set().union(*(c.o_orbits for c in cset.candidates)) == set(range(6))
    s = wo3_supercell
    for cand in cset.candidates:
        assert len(cand.o_indices) == 2 and len(cand.seeds) == 2
        assert [orbits[o] for o in cand.o_indices] == cand.o_orbits
        rebuilt = build_doped(host=s, supercell=(1, 1, 1), **cand.build_kwargs())
        h = rebuilt.doped.dopant_indices
        assert cand.dopant_dopant_distances == pytest.approx(
            [rebuilt.structure.get_distance(*h)], abs=1e-4
        )
        assert sorted(rebuilt.seeds.w_indices) == sorted(x.index for x in cand.seeds)
    far = [c.dopant_dopant_distances[0] for c in cset.candidates if c.proton_placement == "far"]
    near = [c.dopant_dopant_distances[0] for c in cset.candidates if c.proton_placement == "near"]
    assert min(far) > max(near)
    grouped = candidate_set(wo3_supercell, None, protons=2, tolerance=0.3)
    assert grouped.groups[0].n_classes == 5
    for cand in grouped.candidates:
        assert len(cand.member_o_indices) == len(cand.members)
        assert cand.member_o_indices[0] == cand.o_indices
    assert sum(c.count for c in grouped.candidates if c.nupdown == 0) == group.n_configurations
    one = candidate_set(wo3_supercell, None, protons=1, tolerance=None)
    assert one.groups[0].n_orbits == 6 and one.nupdown == [1]


def test_json_round_trip_and_list_api(wo3_supercell, mg_set):
    again = CandidateSet.model_validate_json(mg_set.model_dump_json())
    assert again == mg_set
    assert again.schema_id == "polaronflow.candidates/1"
    listed = enumerate_candidates(wo3_supercell, ion="Mg", tolerance=0.3, cavities=[0])
    assert [c.id for c in listed] == [c.id for c in mg_set.candidates if c.cavity_index == 0]
    for name, field in type(mg_set.candidates[0]).model_fields.items():
        assert field.description, name


def test_bad_enumeration_input(wo3_supercell):
    with pytest.raises(InputError, match="out of range"):
        candidate_set(wo3_supercell, "Mg", cavities=[999])
    with pytest.raises(InputError, match=">= 0"):
        candidate_set(wo3_supercell, "Mg", tolerance=-1)
    with pytest.raises(InputError, match="cavities"):
        candidate_set(wo3_supercell, "Mg", cavities="some")
