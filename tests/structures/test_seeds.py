"""Deterministic, choosable polaron seeds: the tie rule, ion:N and d:X, sites --json."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from polaronflow.errors import PolaronSeedError
from polaronflow.structures.builder import build_doped
from polaronflow.structures.doping import insert_cation
from polaronflow.structures.host import _ASYMMETRIC_UNIT, _P21N_OPS, gamma_wo3, make_supercell
from polaronflow.structures.polarons import (
    DEFAULT_DISTANCE_TOLERANCE,
    DEFAULT_SEED_TOLERANCE,
    _nearest_shell_table,
    pick_seed,
    resolve_polaron_spec,
    w_dopant_distances,
    w_site_table,
)
from polaronflow.structures.sites import cavity_sites


def _relaxed_like(strain: tuple[float, float, float], dbeta: float, shift: float) -> Structure:
    """γ-WO3 as a symmetry-keeping relaxation could leave it: a strained cell (ISIF 3) and the
    asymmetric unit moved (ISIF 2), regenerated with the P2_1/n operations so the space group
    is kept, as VASP keeps it.  The numbers are ours, of the size of a SCAN+U relaxation from
    the experimental cell (a few % in the lattice, ~0.02 Å internal)."""
    rng = np.random.default_rng(3)
    species, coords = [], []
    for element in ("W", "O"):
        for symbol, xyz in _ASYMMETRIC_UNIT:
            if symbol != element:
                continue
            moved = np.asarray(xyz) + rng.uniform(-shift, shift, 3)
            for rot, trans in _P21N_OPS:
                species.append(symbol)
                coords.append(np.mod(rot * moved + trans, 1.0))
    lat = gamma_wo3().lattice
    lattice = Lattice.from_parameters(
        lat.a * strain[0], lat.b * strain[1], lat.c * strain[2], 90, lat.beta + dbeta, 90
    )
    return Structure(lattice, species, coords)


# Strains where the nearest shell-2 W of at least one cavity changes (checked below), so the old
# "nearest" rule would seed a different W in the dry run and at run time.
STRAINS = [((1.026, 0.992, 0.983), 0.1, 0.0), ((1.02, 0.99, 0.985), 0.1, 0.002)]


def test_pick_seed_takes_lowest_index_within_tolerance():
    assert pick_seed({5: 6.00, 3: 6.05, 1: 6.20}, 0.1) == 3
    assert pick_seed({5: 6.00, 3: 6.05, 1: 6.20}, 0.0) == 5
    assert pick_seed({5: 6.00, 3: 6.05, 1: 6.20}, 0.25) == 1
    with pytest.raises(PolaronSeedError):
        pick_seed({}, 0.1)
    with pytest.raises(PolaronSeedError, match=">= 0"):
        pick_seed({1: 1.0}, -0.1)


@pytest.mark.parametrize(("strain", "dbeta", "shift"), STRAINS)
def test_auto_seeds_survive_a_relaxation_where_nearest_flips(strain, dbeta, shift):
    relaxed = _relaxed_like(strain, dbeta, shift)
    flipped = False
    for cavity in (0, 32):  # one cavity of each orbit
        before = build_doped("Mg", cavity=cavity)
        after = build_doped("Mg", cavity=cavity, host=relaxed)
        assert after.doped.cavity.orbit == before.doped.cavity.orbit
        # the same cavity (index order is by orbit, then fractional coordinates)
        assert np.allclose(
            after.doped.cavity.frac_coords, before.doped.cavity.frac_coords, atol=2e-3
        )
        assert after.seeds.w_indices == before.seeds.w_indices
        assert sorted(after.seeds.shells) == [1, 2]
        nearest = []
        for result in (before, after):
            table = _nearest_shell_table(result.doped)
            nearest.append(min((d, w) for w, (sh, d) in table.items() if sh == 2)[1])
        flipped |= nearest[0] != nearest[1]
    assert flipped, "this strain does not exercise the tie rule"


def test_auto_seed_is_the_lowest_index_of_the_tie_group(wo3_supercell):
    doped = insert_cation(wo3_supercell, "Mg", 0)
    result = build_doped("Mg", cavity=0, host=wo3_supercell, supercell=(1, 1, 1))
    table = _nearest_shell_table(doped)
    shell1 = {w: d for w, (sh, d) in table.items() if sh == 1}
    nearest = min(shell1.values())
    ties = [w for w, d in shell1.items() if d <= nearest + DEFAULT_SEED_TOLERANCE]
    assert len(ties) > 1  # γ-WO3 has near-ties in shell 1 too (3.01, 3.04, 3.09, 3.14 Å)
    assert result.seeds.w_indices[0] == min(ties)
    rule = result.manifest()["seed_rule"]
    assert rule["tie_tolerance"] == DEFAULT_SEED_TOLERANCE
    # the margin: the chosen W's room inside the window, or the gap to a lower index outside
    edge = nearest + DEFAULT_SEED_TOLERANCE
    lower_outside = [shell1[w] - edge for w in shell1 if w < min(ties) and w not in ties]
    expected = min([edge - shell1[min(ties)], *lower_outside])
    assert rule["margins"][0] == pytest.approx(expected, abs=1e-4)
    assert all(m > 0.1 for m in rule["margins"])  # the reason for the default tolerance
    # a zero tolerance is the plain "nearest" rule
    plain = build_doped("Mg", cavity=0, host=wo3_supercell, supercell=(1, 1, 1), seed_tolerance=0)
    assert plain.seeds.w_indices[0] == min(shell1, key=shell1.get)
    for cavity in (0, 32):  # both orbits: every default seed keeps > 0.1 Å of margin
        margins = build_doped("Mg", cavity=cavity, host=wo3_supercell, supercell=(1, 1, 1))
        assert min(margins.seeds.margins) > 0.1


def test_ion_numbers_are_one_based_and_mix_with_indices(wo3_supercell):
    doped = insert_cation(wo3_supercell, "Mg", 0)
    assert resolve_polaron_spec(doped, "ion:38,ion:1")[0] == [37, 0]
    assert resolve_polaron_spec(doped, "ion:38, 0")[0] == [37, 0]
    a = build_doped("Mg", host=wo3_supercell, supercell=(1, 1, 1), polarons="ion:38,ion:1")
    b = build_doped("Mg", host=wo3_supercell, supercell=(1, 1, 1), polarons="37,0")
    assert a.seeds == b.seeds
    seeds = a.manifest()["polaron_seeds"]
    assert [(s["w_index"], s["vasp_ion"]) for s in seeds] == [(37, 38), (0, 1)]
    assert a.manifest()["seed_rule"]["request"] == ["ion:38", "ion:1"]


def test_distance_seeds_follow_the_same_rule(wo3_supercell):
    doped = insert_cation(wo3_supercell, "Mg", 0)
    dist = w_dopant_distances(doped)
    # W37 is the nearest W (3.010 Å); W25 is 0.03 Å farther: a tie, so the lower index wins
    target = dist[37]
    ties = sorted(w for w, d in dist.items() if abs(d - target) <= DEFAULT_DISTANCE_TOLERANCE)
    assert ties == [25, 37]
    assert resolve_polaron_spec(doped, f"d:{target:.4f}")[0] == [25]
    # with a tolerance below the gap the exact W is taken
    assert resolve_polaron_spec(doped, f"d:{target:.4f}", tolerance=0.01)[0] == [37]
    # the same target twice: W already chosen are skipped, the second takes the next by the rule
    assert dist[25] - dist[37] < 0.05
    assert resolve_polaron_spec(doped, f"d:{target:.4f},d:{target:.4f}", tolerance=0.05)[0] == [
        25,
        37,
    ]
    # distances in the gap between shells 1 (≤ 3.5 Å) and 2 (≥ 5.9 Å) match no W
    gap_mid = (max(d for d in dist.values() if d < 4) + min(d for d in dist.values() if d > 4)) / 2
    with pytest.raises(PolaronSeedError, match="no free W within"):
        resolve_polaron_spec(doped, f"d:3.1,d:{gap_mid:.2f}")


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("ion:0,ion:1", "out of range"),
        ("ion:258,ion:1", "out of range"),
        ("ion:x", "VASP ion number"),
        ("d:abc", "distance in Å"),
        ("d:-3", "> 0"),
        ("w7", "not valid"),
    ],
)
def test_bad_specs(wo3_supercell, spec, match):
    doped = insert_cation(wo3_supercell, "Mg", 0)
    with pytest.raises(PolaronSeedError, match=match):
        resolve_polaron_spec(doped, spec)


def test_ion_number_of_a_non_w_site_is_rejected(wo3_supercell):
    with pytest.raises(PolaronSeedError, match="not W sites"):
        build_doped("Mg", host=wo3_supercell, supercell=(1, 1, 1), polarons="ion:1,ion:100")
    with pytest.raises(PolaronSeedError, match="repeat"):
        build_doped("Mg", host=wo3_supercell, supercell=(1, 1, 1), polarons="ion:1,0")


def test_w_site_table_lists_every_w_once(wo3_supercell):
    cavities = cavity_sites(wo3_supercell)
    data = w_site_table(wo3_supercell, cavities, 0)
    rows = data["w_sites"]
    assert sorted(r["index"] for r in rows) == list(range(64))
    assert all(r["vasp_ion"] == r["index"] + 1 for r in rows)
    centre = np.array(cavities[0].frac_coords)
    for r in rows[:10]:
        d, _ = wo3_supercell.lattice.get_distance_and_image(
            centre, wo3_supercell[r["index"]].frac_coords
        )
        assert r["distance"] == pytest.approx(d, abs=1e-4)
    counts = [sum(1 for r in rows if r["shell"] == n) for n in (1, 2, 3)]
    assert counts == [8, 24, 24]
    assert all(r["distance"] > 9.0 for r in rows if r["shell"] is None)
    # the shells' rule picks are what build uses: shell 1 is the first auto seed
    built = build_doped("Mg", cavity=0, host=wo3_supercell, supercell=(1, 1, 1))
    assert data["shells"][0]["rule_pick"]["index"] == built.seeds.w_indices[0]


def test_seeds_do_not_depend_on_the_supercell_call_path(gamma_wo3):
    # build (host -> supercell inside) and the campaign (supercell given, 1x1x1) agree
    sc = make_supercell(gamma_wo3, (2, 2, 2))
    a = build_doped("Mg")
    b = build_doped("Mg", host=sc, supercell=(1, 1, 1))
    assert a.seeds.w_indices == b.seeds.w_indices
