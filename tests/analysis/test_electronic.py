"""Band edges, in-gap states and level depths: constructed runs and real VASP files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polaronflow.analysis.electronic import analyze_electronic, dos_gap, efermi_gap
from polaronflow.analysis.rundata import RunData
from polaronflow.errors import RunQualityError

VBM, CBM, LEVEL = 0.0, 2.6, 2.2  # host edges and the polaronic level, eV
SIGMA = 0.05


def gaussian_dos(energies: np.ndarray, eig: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(nspin, nedos) Gaussian-broadened DOS of (nspin, nk, nb) eigenvalues."""
    out = []
    for s in range(eig.shape[0]):
        x = energies[:, None, None] - eig[s][None]
        g = np.exp(-0.5 * (x / SIGMA) ** 2) / (SIGMA * np.sqrt(2 * np.pi))
        out.append(np.einsum("ekb,k->e", g, weights))
    return np.array(out)


def polaron_bands(n_in_gap=(2, 0), efermi=None, nupdown=2.0, level=LEVEL) -> RunData:
    """Two spins, 2 k-points, 60 valence bands (-6..0 eV), in-gap bands, 40 conduction bands."""
    nk = 2
    weights = np.array([0.25, 0.75])
    vb = np.linspace(-6.0, VBM, 60)
    cb = np.linspace(CBM, CBM + 4.0, 40)
    nb = 60 + max(n_in_gap) + 40
    eig = np.zeros((2, nk, nb))
    occ = np.zeros((2, nk, nb))
    for s in range(2):
        gap_states = level + 0.02 * np.arange(n_in_gap[s])
        bands = np.concatenate([vb, gap_states, cb])
        bands = np.concatenate([bands, CBM + 5 + np.arange(nb - len(bands))])
        for k in range(nk):
            eig[s, k] = bands + 0.01 * k * np.sign(bands - 1.0)  # a little dispersion
            occ[s, k, : 60 + n_in_gap[s]] = 1.0
    e = np.linspace(-8, 8, 3201)
    return RunData(
        path=Path("constructed"),
        parameters={"ISPIN": 2, "NUPDOWN": nupdown, "SIGMA": SIGMA},
        eigenvalues=eig,
        occupations=occ,
        kpoint_weights=weights,
        efermi=level + 0.01 if efermi is None else efermi,
        dos_energies=e,
        total_dos=gaussian_dos(e, eig, weights),
    )


def test_in_gap_polaron_level_both_methods():
    res = analyze_electronic(polaron_bands(), expected_in_gap=2)
    assert res.vbm == pytest.approx(LEVEL + 0.03, abs=0.011)  # highest occupied = in-gap state
    assert res.host_vbm == pytest.approx(VBM + 0.01, abs=0.011)
    assert res.cbm == pytest.approx(CBM, abs=0.011)
    assert [(st.spin, st.band) for st in res.in_gap_states] == [(0, 60), (0, 61)]
    assert res.spins[0].n_in_gap == 2 and res.spins[1].n_in_gap == 0
    occ_depth = res.level_occupations
    assert occ_depth.method == "occupations"
    assert occ_depth.depth == pytest.approx(CBM - LEVEL - 0.01, abs=0.02)
    dos_depth = res.level_dos
    assert dos_depth.method == "dos-peak"
    # the DOS onset is broadened by SIGMA below the CBM
    assert dos_depth.depth == pytest.approx(CBM - LEVEL, abs=3 * SIGMA)
    assert dos_depth.cbm < res.cbm
    assert res.host_gap == pytest.approx(CBM - VBM, abs=0.03)
    assert not [w for w in res.warnings if "expected" in w]


def test_antiparallel_polarons_one_per_spin():
    res = analyze_electronic(polaron_bands(n_in_gap=(1, 1), nupdown=0.0))
    assert sorted(st.spin for st in res.in_gap_states) == [0, 1]


def test_efermi_is_not_trusted():
    # E-fermi printed below the in-gap states (as with a fixed NUPDOWN): same answer, a warning
    run = polaron_bands(efermi=0.5)
    res = analyze_electronic(run)
    assert res.level_occupations.depth == pytest.approx(CBM - LEVEL - 0.01, abs=0.02)
    assert res.efermi_consistent is False
    assert any("E-fermi" in w for w in res.warnings)
    # splitting at that E-fermi puts the occupied level into the "conduction band"
    assert res.gap_efermi == pytest.approx(LEVEL - VBM - 0.01, abs=0.02)


def test_no_in_gap_states_in_a_pristine_host():
    res = analyze_electronic(polaron_bands(n_in_gap=(0, 0)))
    assert res.in_gap_states == [] and res.level_occupations is None and res.level_dos is None
    assert res.host_vbm == res.vbm


def test_shallow_states_are_not_in_gap():
    # 0.3 eV above the valence band is below the 0.5 eV margin: part of the host band
    res = analyze_electronic(polaron_bands(level=VBM + 0.3))
    assert res.in_gap_states == []


def test_ispin1_refused_for_polarons():
    run = polaron_bands()
    run.parameters["ISPIN"] = 1
    with pytest.raises(RunQualityError, match="ISPIN = 1"):
        analyze_electronic(run)
    run.eigenvalues = None
    with pytest.raises(RunQualityError, match="eigenvalues"):
        analyze_electronic(run, for_polarons=False)


def test_gap_helpers():
    eig = np.array([[[-1.0, 0.0, 1.5, 2.0]]])
    assert efermi_gap(eig, 0.7) == pytest.approx(1.5)
    assert efermi_gap(eig, 1.7) == pytest.approx(0.5)  # a wrong E-fermi gives a wrong gap
    assert efermi_gap(eig, 5.0) == 0.0
    e = np.linspace(-2, 4, 601)
    d = ((e < 0.0) | (e > 1.5)).astype(float)
    assert dos_gap(e, d, 0.7) == pytest.approx(1.5, abs=0.02)


# --------------------------------------------------------------------- real VASP files
def _read(corpus: Path, name: str) -> RunData:
    readers = pytest.importorskip("polaronflow.analysis.readers")
    return readers.read_run(corpus / name, strict=False)


def test_eubafbr_in_gap_eu_4f(corpus_dir):
    run = _read(corpus_dir, "EuBaFBr_Eu_U_108at")
    res = analyze_electronic(run)
    assert res.vbm == pytest.approx(0.0333, abs=0.002)  # occupied Eu 4f (partly filled)
    assert res.cbm == pytest.approx(4.8421, abs=0.002)
    assert res.gap_occupations == pytest.approx(4.809, abs=0.003)
    assert res.nupdown == 6


def test_lifepo4_methods_disagree(corpus_dir):
    run = _read(corpus_dir, "LiFePO4_112at_U_relax")
    res = analyze_electronic(run, for_polarons=False)
    assert res.gap_efermi == pytest.approx(0.974, abs=0.002)
    assert res.gap_dos == pytest.approx(0.0, abs=1e-6)
    assert res.gap_occupations == pytest.approx(0.974, abs=0.002)
    # pymatgen's convention (any occupation > 1e-8 is occupied) counts a smearing tail
    strict = analyze_electronic(run, for_polarons=False, occ_tol=1e-8)
    assert strict.gap_occupations == pytest.approx(0.147, abs=0.002)
    assert any("disagree" in w for w in res.warnings)


def test_o2_efermi_below_occupied_pi_star(corpus_dir):
    run = _read(corpus_dir, "O2_molecule")
    res = analyze_electronic(run)
    assert run.efermi == pytest.approx(-11.31, abs=0.01)
    assert res.efermi_consistent is False
    assert res.vbm == pytest.approx(-6.9301, abs=1e-3)
    assert res.gap_efermi == pytest.approx(4.6218, abs=1e-3)
    assert res.gap_dos == pytest.approx(4.256, abs=0.01)
    # the two occupied π* orbitals (spin up) stand alone above the σ/π manifold
    assert [(st.spin, st.band) for st in res.in_gap_states] == [(0, 5), (0, 6)]


def test_wo3_ispin1_refused_but_gap_available(corpus_dir):
    run = _read(corpus_dir, "WO3_cubic_PBE")
    with pytest.raises(RunQualityError, match="ISPIN"):
        analyze_electronic(run)
    res = analyze_electronic(run, for_polarons=False)
    assert res.gap_occupations == pytest.approx(0.4704, abs=1e-3)
    assert res.gap_dos == pytest.approx(0.158, abs=0.005)


def test_partly_filled_spin_channel_is_not_in_gap(corpus_dir):
    # Li8NO3 (odd electron count): the spin-down N 2p bands are partly filled across k; an
    # isolated-looking group that overlaps the other spin's valence top is host band.
    res = analyze_electronic(_read(corpus_dir, "metaGGA_r2SCAN_SCAN/Li8NO3_SCAN_rVV10"))
    assert res.in_gap_states == []
    assert res.host_vbm == res.vbm


def test_feo_both_level_methods_agree(corpus_dir):
    res = analyze_electronic(_read(corpus_dir, "FeO_U_relax_custodian"))
    assert len(res.in_gap_states) == 3
    assert res.level_dos.depth == pytest.approx(res.level_occupations.depth, abs=0.2)
