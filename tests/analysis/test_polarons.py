"""Polaron sites, shells, planes and electron counts from site moments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polaronflow.analysis.polarons import (
    ION_ELECTRONS,
    analyze_polarons,
    group_shells,
    minimum_image_vectors,
    nearest_miller_plane,
)
from polaronflow.analysis.rundata import RunData
from polaronflow.errors import InputError, RunQualityError

A_PC = 3.78  # pseudo-cubic W–W spacing, Å
N = 4  # W per edge: 4x4x4 = 64 W, as the paper's 256-atom cell


def doped_cell(dopant: str | None = "Mg", beta: float = 90.9):
    """A ReO3-type W64O192 cell (slightly monoclinic) with an optional dopant in a cavity."""
    a = N * A_PC
    beta_r = np.radians(beta)
    lattice = np.array([[a, 0, 0], [0, a * 1.02, 0], [a * np.cos(beta_r), 0, a * np.sin(beta_r)]])
    species, frac = [], []
    grid = [(i, j, k) for i in range(N) for j in range(N) for k in range(N)]
    for i, j, k in grid:
        species.append("W")
        frac.append(np.array([i, j, k], dtype=float) / N)
    for i, j, k in grid:
        for axis in range(3):
            p = np.array([i, j, k], dtype=float)
            p[axis] += 0.5
            species.append("O")
            frac.append(p / N)
    if dopant:
        species.append(dopant)
        frac.append(np.array([1.5, 1.5, 1.5]) / N)  # centre of a cube of 8 W
    return species, lattice, np.array(frac) % 1.0


def w_index(i: int, j: int, k: int) -> int:
    return (i % N) * N * N + (j % N) * N + (k % N)


def seed(
    moments: np.ndarray,
    centre: tuple[int, int, int],
    m: float,
    in_plane_axis: int,
    tail: float = 0.1,
    out_tail: float = 0.01,
) -> None:
    """A polaron on W ``centre`` spreading in the plane normal to ``in_plane_axis``."""
    moments[w_index(*centre)] = m
    for axis in range(3):
        for step in (-1, 1):
            nb = list(centre)
            nb[axis] += step
            moments[w_index(*nb)] += out_tail if axis == in_plane_axis else tail


def mg_run(**kw) -> RunData:
    species, lattice, frac = doped_cell(kw.pop("dopant", "Mg"))
    moments = np.zeros(len(species))
    # Shell 1: the W at (1,1,1) is a corner of the Mg cube; shell 2: (3,2,1) is √11/2·a away
    # (and shares no neighbour with the first).
    seed(moments, (1, 1, 1), 0.68, in_plane_axis=0)
    seed(moments, (3, 2, 1), 0.59, in_plane_axis=0)
    return RunData(
        path=Path("mg_doped"),
        parameters={"ISPIN": 2},
        species=species,
        lattice=lattice,
        frac_coords=frac,
        site_moments=moments,
        total_moment=kw.pop("total", 2.0),
        **kw,
    )


def test_mg_doped_polarons_shells_planes_tails():
    res = analyze_polarons(mg_run())
    assert res.polaron_count == 2
    assert res.electrons_donated == 2
    assert res.flags == []
    assert res.dopant_elements == ["Mg"]
    p1, p2 = res.polarons
    assert p1.moment == pytest.approx(0.68) and p2.moment == pytest.approx(0.59)
    assert p1.shell == 1 and p2.shell == 2
    assert p1.distance_to_dopant == pytest.approx(np.sqrt(3) / 2 * A_PC, abs=0.15)
    assert p2.distance_to_dopant == pytest.approx(np.sqrt(11) / 2 * A_PC, abs=0.2)
    assert p1.plane == "(100)" and p2.plane == "(100)"
    assert p1.plane_deviation < 2.0
    assert len(p1.neighbour_indices) == 6
    # tails: 4 × 0.1 + 2 × 0.01 around 0.68
    assert p1.tail_fraction == pytest.approx(0.42 / 1.10, abs=1e-6)
    assert res.largest_other_moment == pytest.approx(0.1)


@pytest.mark.parametrize("axis, plane", [(1, "(010)"), (2, "(001)")])
def test_plane_follows_the_tails(axis, plane):
    species, lattice, frac = doped_cell()
    moments = np.zeros(len(species))
    seed(moments, (1, 1, 1), 0.7, in_plane_axis=axis)
    seed(moments, (3, 3, 3), 0.7, in_plane_axis=axis)
    run = RunData(
        path=Path("x"),
        parameters={"ISPIN": 2},
        species=species,
        lattice=lattice,
        frac_coords=frac,
        site_moments=moments,
        total_moment=2.0,
    )
    res = analyze_polarons(run)
    assert [p.plane for p in res.polarons] == [plane, plane]


def test_isotropic_tails_give_no_plane():
    species, lattice, frac = doped_cell()
    moments = np.zeros(len(species))
    seed(moments, (1, 1, 1), 0.7, in_plane_axis=0, tail=0.05, out_tail=0.05)
    run = RunData(
        path=Path("x"),
        parameters={"ISPIN": 2},
        species=species,
        lattice=lattice,
        frac_coords=frac,
        site_moments=moments,
        total_moment=1.0,
    )
    res = analyze_polarons(run, electrons=1)
    assert res.polarons[0].plane is None
    assert res.polarons[0].plane_contrast == pytest.approx(0.0)


def test_delocalised_and_missing_and_extra_flags():
    species, lattice, frac = doped_cell()
    deloc = np.zeros(len(species))
    deloc[:64] = 2.0 / 64  # two electrons spread over every W
    run = RunData(
        path=Path("d"),
        parameters={"ISPIN": 2},
        species=species,
        lattice=lattice,
        frac_coords=frac,
        site_moments=deloc,
        total_moment=2.0,
    )
    res = analyze_polarons(run)
    assert res.polaron_count == 0
    assert set(res.flags) == {"missing", "delocalised"}

    one = mg_run()
    one.site_moments[w_index(3, 2, 1)] = 0.05
    assert analyze_polarons(one).flags == ["missing"]

    three = mg_run()
    three.site_moments[w_index(0, 3, 3)] = 0.5
    assert analyze_polarons(three).flags == ["extra"]


def test_antiparallel_polarons_are_found():
    run = mg_run(total=0.0)
    run.site_moments[w_index(3, 2, 1)] *= -1
    res = analyze_polarons(run)
    assert res.polaron_count == 2 and res.flags == []
    assert any("antiparallel" in n for n in res.notes)


def test_threshold_and_host_element_options():
    run = mg_run()
    assert analyze_polarons(run, threshold=0.6).polaron_count == 1
    with pytest.raises(InputError, match="no Ti sites"):
        analyze_polarons(run, host_element="Ti")
    with pytest.raises(InputError, match="threshold"):
        analyze_polarons(run, threshold=0)


def test_pristine_host_has_no_dopant_columns():
    species, lattice, frac = doped_cell(dopant=None)
    moments = np.zeros(len(species))
    seed(moments, (2, 2, 2), 0.7, in_plane_axis=0)
    run = RunData(
        path=Path("p"),
        parameters={"ISPIN": 2},
        species=species,
        lattice=lattice,
        frac_coords=frac,
        site_moments=moments,
        total_moment=1.0,
    )
    res = analyze_polarons(run)
    assert res.dopant_indices == [] and res.electrons_donated is None
    assert res.polarons[0].shell is None and res.polarons[0].distance_to_dopant is None
    assert res.polarons[0].plane == "(100)"
    assert analyze_polarons(run, electrons=1).flags == []


def test_protons_are_dopants_with_one_electron_each():
    species, lattice, frac = doped_cell(dopant="H")
    species.append("H")
    frac = np.vstack([frac, [0.9, 0.1, 0.6]])
    moments = np.zeros(len(species))
    seed(moments, (1, 1, 1), 0.7, in_plane_axis=0)
    seed(moments, (3, 3, 3), 0.7, in_plane_axis=0)
    run = RunData(
        path=Path("h"),
        parameters={"ISPIN": 2},
        species=species,
        lattice=lattice,
        frac_coords=frac,
        site_moments=moments,
        total_moment=2.0,
    )
    res = analyze_polarons(run)
    assert res.electrons_donated == 2 and res.dopant_elements == ["H", "H"]
    assert res.flags == []
    # an explicit dopant overrides the element rule
    assert analyze_polarons(run, dopant=[len(species) - 1]).electrons_donated == 1


def test_refusals_ispin1_and_no_moments():
    run = mg_run()
    run.parameters["ISPIN"] = 1
    with pytest.raises(RunQualityError, match="ISPIN = 1"):
        analyze_polarons(run)
    run = mg_run()
    run.site_moments = None
    run.parameters["LORBIT"] = 0
    with pytest.raises(RunQualityError, match="LORBIT = 0"):
        analyze_polarons(run)


def test_minimum_image_and_shells_and_miller():
    lat = np.diag([10.0, 10.0, 10.0])
    v = minimum_image_vectors(lat, np.array([0.05, 0.0, 0.0]), np.array([[0.95, 0.0, 0.0]]))
    assert np.allclose(v, [[-1.0, 0.0, 0.0]])
    # a skewed cell: the wrapped difference is not the shortest vector
    skew = np.array([[10.0, 0, 0], [9.0, 3.0, 0], [0, 0, 10.0]])
    v = minimum_image_vectors(skew, np.zeros(3), np.array([[0.3, 0.5, 0.0]]))
    assert np.allclose(v, [[-1.5, -1.5, 0.0]])  # plain wrapping would give (7.5, 1.5, 0)
    assert group_shells([3.1, 6.3, 3.3, 6.0, 8.2]).tolist() == [1, 2, 1, 2, 3]
    hkl, ang = nearest_miller_plane(np.diag([7.3, 7.5, 7.7]), np.array([0.02, 1.0, 0.0]))
    assert hkl == [0, 1, 0] and ang < 2
    hkl, _ = nearest_miller_plane(np.diag([5.0, 5.0, 5.0]), np.array([1.0, -1.0, 0.0]))
    assert hkl == [1, -1, 0]


def test_electron_table_is_the_projects_one_table():
    from polaronflow.dopants import ION_ELECTRONS as CATIONS
    from polaronflow.structures import doping

    assert doping.ION_ELECTRONS is CATIONS
    assert {k: ION_ELECTRONS[k] for k in CATIONS} == CATIONS and ION_ELECTRONS["H"] == 1
