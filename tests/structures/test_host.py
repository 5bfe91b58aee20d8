from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from polaronflow.errors import HostStructureError, InputError
from polaronflow.structures.host import (
    EXPERIMENTAL_LATTICE,
    load_host,
    make_supercell,
    validate_host,
)


def test_gamma_wo3_is_32_atoms_p21n(gamma_wo3):
    assert len(gamma_wo3) == 32
    assert gamma_wo3.composition.reduced_formula == "WO3"
    assert SpacegroupAnalyzer(gamma_wo3, symprec=0.01).get_space_group_number() == 14


def test_gamma_wo3_lattice_and_provenance(gamma_wo3):
    a, b, c = gamma_wo3.lattice.abc
    assert (a, b, c) == pytest.approx((7.30084, 7.53889, 7.68962), abs=1e-5)
    assert gamma_wo3.lattice.beta == pytest.approx(90.892, abs=1e-4)
    prov = gamma_wo3.properties["provenance"]
    assert "Woodward" in prov["lattice_source"]
    assert "noemas/WO3" in prov["coordinates_source"]
    assert prov["experimental_lattice"] == EXPERIMENTAL_LATTICE


def test_every_w_is_octahedral_with_paper_bond_range(gamma_wo3):
    for i, site in enumerate(gamma_wo3):
        if site.specie.symbol != "W":
            continue
        bonds = [
            n.nn_distance for n in gamma_wo3.get_neighbors(site, 2.6) if n.specie.symbol == "O"
        ]
        assert len(bonds) == 6, i
        assert 1.75 < min(bonds) and max(bonds) < 2.12


def test_supercell_222_is_w64_o192(wo3_supercell):
    assert wo3_supercell.composition.formula == "W64 O192"
    assert len(wo3_supercell) == 256
    assert wo3_supercell.lattice.abc == pytest.approx((14.60168, 15.07778, 15.37924), abs=1e-4)
    # W first, then O: POSCAR species blocks stay W, O
    symbols = [s.specie.symbol for s in wo3_supercell]
    assert symbols == ["W"] * 64 + ["O"] * 192
    assert wo3_supercell.properties["supercell_matrix"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
    assert "provenance" in wo3_supercell.properties


def test_supercell_by_matrix(gamma_wo3):
    s = make_supercell(gamma_wo3, [[1, 1, 0], [-1, 1, 0], [0, 0, 1]])
    assert len(s) == 64


@pytest.mark.parametrize(
    "bad", [(0, 2, 2), (-1, 2, 2), (2, 2), 0, [[1, 0, 0], [0, 1, 0], [0, 0, 0]], (1.5, 1, 1)]
)
def test_supercell_rejects_non_positive_or_non_integer(gamma_wo3, bad):
    with pytest.raises(InputError):
        make_supercell(gamma_wo3, bad)


def test_load_host_roundtrip_poscar(tmp_path, gamma_wo3):
    path = tmp_path / "POSCAR"
    gamma_wo3.to(filename=str(path), fmt="poscar")
    host = load_host(path)
    assert len(host) == 32
    assert "user file" in host.properties["provenance"]["source"]


def test_load_host_cif(tmp_path, gamma_wo3):
    path = tmp_path / "wo3.cif"
    gamma_wo3.to(filename=str(path))
    assert load_host(path).composition.reduced_formula == "WO3"


def test_load_host_missing_file(tmp_path):
    with pytest.raises(HostStructureError, match="does not exist"):
        load_host(tmp_path / "nope.cif")


def test_load_host_junk_file(tmp_path):
    path = tmp_path / "junk.cif"
    path.write_bytes(b"\x00\x01\x02 not a structure")
    with pytest.raises(HostStructureError, match="could not be read"):
        load_host(path)


def test_validate_rejects_missing_w():
    s = Structure(Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(HostStructureError, match="no W"):
        validate_host(s, "MgO.cif")


def test_validate_rejects_non_octahedral_w():
    # rock-salt-like WO: W has 6 O but at 2.9 Å (too far) -> 0 O within bond range
    s = Structure(Lattice.cubic(5.8), ["W", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(HostStructureError, match="not WO3-like"):
        validate_host(s)


def test_validate_accepts_cubic_reo3_type():
    s = Structure(
        Lattice.cubic(3.78),
        ["W", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]],
    )
    validate_host(s)
    assert np.isclose(s.lattice.a, 3.78)
