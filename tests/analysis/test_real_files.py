"""Issue 12 on real VASP files (tests/data/vasp-corpus) and hand-edited copies of them
(tests/data/edited, see its README): what a reader must find, what the analysis must say."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from polaronflow.analysis.readers import read_outcar_moments, read_run
from polaronflow.analysis.report import AnalysisOptions, analyze_run, analyze_runs
from polaronflow.analysis.thermo import consistency_problems, u_by_block, u_by_element
from polaronflow.cli import main
from polaronflow.errors import RunReadError

EDITED = Path(__file__).resolve().parents[1] / "data" / "edited"


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------ 1. per species block
def test_u_and_potcars_follow_species_blocks_not_elements(corpus_dir):
    # LiFePO4 lists Fe in three POTCAR blocks (Li Fe Fe Fe P O): LDAUU has 6 entries
    run = read_run(corpus_dir / "LiFePO4_112at_U_relax")
    assert [el for el, _ in run.species_blocks] == ["Li", "Fe", "Fe", "Fe", "P", "O"]
    assert sum(n for _, n in run.species_blocks) == len(run.species) == 112
    assert [u for _, u, _ in u_by_block(run)] == [0.0, 4.3, 4.3, 4.3, 0.0, 0.0]
    # mapped per element, the six entries put U on P and O; per block only Fe has U
    assert u_by_element(run) == {"Fe": 4.3}
    assert consistency_problems({"a": run, "b": run}) == []
    rep = analyze_run(run, AnalysisOptions(host_element="Fe", host_elements=("Li", "Fe", "P", "O")))
    assert rep.u_values == {"Fe": 4.3}
    blocks = [(b.element, b.sites, b.u, b.ldaul) for b in rep.species_blocks]
    assert blocks == [
        ("Li", 16, 0.0, 0),
        ("Fe", 1, 4.3, 2),
        ("Fe", 7, 4.3, 2),
        ("Fe", 8, 4.3, 2),
        ("P", 16, 0.0, 0),
        ("O", 64, 0.0, 0),
    ]
    assert all(b.potcar and b.potcar.split()[1].startswith(b.element) for b in rep.species_blocks)


def test_different_u_on_one_elements_blocks_is_reported(corpus_dir):
    run = read_run(corpus_dir / "LiFePO4_112at_U_relax")
    run.parameters["LDAUU"] = [0.0, 6.0, 4.3, 4.3, 0.0, 0.0]  # the seeded Fe block at 6 eV
    other = read_run(corpus_dir / "LiFePO4_112at_U_relax")
    problems = consistency_problems({"seeded": run, "plain": other})
    assert any("Fe blocks carry different U (4.3, 6 eV)" in p for p in problems)
    assert any(p.startswith("different U on Fe") for p in problems)
    assert not any(" on O" in p or " on P" in p for p in problems)


# ------------------------------------------------------------ 2. functional
def test_functional_from_outcar_alone(corpus_dir):
    assert read_run(EDITED / "FeO_outcar_hse06").functional == "HSE06"
    assert read_run(corpus_dir / "LiNi2O4_U_relax_outcar").functional == "PBE"
    # VASP 5 prints METAGGA = F for this r2SCAN run: from the OUTCAR alone, "unknown"
    alone = read_run(corpus_dir / "metaGGA_r2SCAN_SCAN" / "LiF_r2SCAN" / "OUTCAR.gz")
    assert alone.functional is None
    assert read_run(corpus_dir / "metaGGA_r2SCAN_SCAN" / "LiF_r2SCAN").functional == "R2SCAN"


def test_hybrid_and_gga_runs_are_not_combined(corpus_dir):
    hse = read_run(EDITED / "FeO_outcar_hse06")
    pbe = read_run(corpus_dir / "FeO_U_relax_custodian")
    assert any("different functionals" in p for p in consistency_problems({"h": hse, "p": pbe}))


# ------------------------------------------------------------ 3. OUTCAR-only runs
def test_outcar_only_run_is_analysed_by_default(corpus_dir, tmp_path, capsys):
    run = read_run(corpus_dir / "LiNi2O4_U_relax_outcar")
    assert run.eigenvalues is not None and run.eigenvalues.shape == (2, 76, 33)
    assert run.kpoint_weights is not None and len(run.kpoint_weights) == 76
    out_json = tmp_path / "r.json"
    case = str(corpus_dir / "LiNi2O4_U_relax_outcar")
    code, _, err = _cli(["analyze", case, "--cation", "Ni", "--json-out", str(out_json)], capsys)
    assert code == 0, err
    rep = json.loads(out_json.read_text())["runs"][0]
    assert [p["ion"] for p in rep["polarons"]["polarons"]] == [2, 3]


def test_missing_vasprun_marked_not_available(corpus_dir, tmp_path):
    # an OUTCAR-only copy whose OUTCAR lists no eigenvalues (the listing removed)
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(corpus_dir / "LiNi2O4_U_relax_outcar" / "OUTCAR.gz", folder)
    run = read_run(folder, eigen=False)
    rep = analyze_run(run, AnalysisOptions(host_element="Ni"))
    assert rep.electronic is None and rep.polarons is not None
    assert rep.unavailable["electronic"].startswith("not available (no vasprun.xml")
    assert rep.model_dump()["unavailable"]["electronic"]


def test_missing_outcar_marked_for_polarons(corpus_dir):
    run = read_run(corpus_dir / "LiFePO4_112at_U_relax")
    rep = analyze_run(run, AnalysisOptions(host_element="Fe", host_elements=("Li", "Fe", "P", "O")))
    assert rep.polarons is None and "no OUTCAR" in rep.unavailable["polarons"]
    assert rep.electronic is not None


# ------------------------------------------------------------ 4. --electrons, --host, --dopant
def test_host_and_electrons_options(corpus_dir, tmp_path, capsys):
    case = str(corpus_dir / "LiNi2O4_U_relax_outcar")
    out_json = tmp_path / "r.json"
    # default host = Ni + O: Li is a dopant (1 e); with --host Li,Ni,O nothing is a dopant
    code, _, err = _cli(["analyze", case, "--cation", "Ni", "--json-out", str(out_json)], capsys)
    pol = json.loads(out_json.read_text())["runs"][0]["polarons"]
    assert pol["dopant_elements"] == ["Li"] and pol["dopant_ions"] == [1]
    assert pol["polarons"][0]["distance_to_dopant"] is not None
    opts = ["--cation", "Ni", "--host", "Li,Ni,O", "--electrons", "2"]
    code, _, err = _cli(["analyze", case, *opts, "--json-out", str(out_json)], capsys)
    assert code == 0, err
    pol = json.loads(out_json.read_text())["runs"][0]["polarons"]
    assert pol["dopant_elements"] == [] and pol["polarons"][0]["distance_to_dopant"] is None
    assert pol["electrons_donated"] == 2 and pol["flags"] == []
    code, _, err = _cli(["analyze", case, "--cation", "Ni", "--dopant", "Lj"], capsys)
    assert code == 2 and "--dopant 'Lj' is in none of the runs" in err and "Li" in err
    code, _, err = _cli(["analyze", case, "--cation", "Ni", "--host", "Li,O"], capsys)
    assert code == 2 and "--host" in err and "Traceback" not in err
    code, _, err = _cli(["analyze", case, "--cation", "Ni", "--electrons", "-1"], capsys)
    assert code == 2 and "--electrons" in err


def test_pristine_expects_zero_electrons_from_nelect(corpus_dir):
    run = read_run(corpus_dir / "FeO_U_relax_custodian")
    rep = analyze_run(run, AnalysisOptions(host_element="Fe"))
    assert rep.polarons.electrons_donated == 0  # NELECT = Σ ZVAL: a neutral cell
    assert "NELECT" in rep.polarons.electrons_source


# ------------------------------------------------------------ 5. signs and ion numbers
def test_parallel_moments_are_not_called_antiparallel(corpus_dir):
    run = read_run(corpus_dir / "LiNi2O4_U_relax_outcar")
    rep = analyze_run(run, AnalysisOptions(host_element="Ni"))
    notes = " ".join(rep.polarons.notes)
    assert "antiparallel" not in notes and "parallel spins" in notes
    run.site_moments = np.array(run.site_moments)
    run.site_moments[2] *= -1
    rep = analyze_run(run, AnalysisOptions(host_element="Ni"))
    assert any("antiparallel spins (1 up, 1 down)" in n for n in rep.polarons.notes)


def test_sub_threshold_moment_shown_with_sign_and_ion(corpus_dir):
    run = read_run(corpus_dir / "FeO_U_relax_custodian")
    rep = analyze_run(run, AnalysisOptions(host_element="Fe", threshold=2.0))
    pol = rep.polarons
    # OUTCAR: ion 1 3.007 μB, ion 2 1.397 μB
    assert [p.ion for p in pol.polarons] == [1] and pol.polarons[0].index == 0
    assert pol.largest_below_moment == pytest.approx(1.397) and pol.largest_below_ion == 2
    assert pol.largest_other_moment == pytest.approx(1.397)
    assert any("+1.397 μB on ion 2" in n for n in pol.notes)
    # the sign is kept: a negative sub-threshold moment reads negative
    run.site_moments = np.array(run.site_moments) * -1
    pol = analyze_run(run, AnalysisOptions(host_element="Fe", threshold=2.0)).polarons
    assert pol.largest_below_moment == pytest.approx(-1.397)
    assert any("-1.397 μB on ion 2" in n for n in pol.notes)


# ------------------------------------------------------------ 6. metals, references
def test_metal_has_no_gap_and_references_no_in_gap_level(corpus_dir):
    runs = [
        read_run(corpus_dir / c, strict=False)
        for c in ("Mg_hcp_metal", "MgO_bulk_prim", "O2_molecule")
    ]
    report = analyze_runs(runs, AnalysisOptions(partial=True))
    mg, mgo, o2 = report.runs
    assert mg.electronic.metal and mg.electronic.host_gap is None
    assert mg.electronic.level_occupations is None and not mg.electronic.in_gap_states
    for ref in (mgo, o2):
        assert not ref.electronic.metal and ref.electronic.host_gap > 0
        assert not ref.electronic.in_gap_states and ref.electronic.level_occupations is None
    from polaronflow.analysis.report import summary_rows

    rows = summary_rows(report)
    assert rows[0]["gap (eV)"] == "metal"
    assert all("level↓CBM occ" not in r for r in rows)


def test_partly_filled_level_at_one_k_point_is_not_a_metal(corpus_dir):
    # Eu-doped BaFBr, Γ only: three Eu 4f states are partly filled (0.78, 0.78, 0.43), which
    # no band crossing E-fermi explains: a partly filled level, not a metal
    run = read_run(corpus_dir / "EuBaFBr_Eu_U_108at", strict=False)
    frac = (run.occupations > 0.01) & (run.occupations < 0.99)
    assert frac.sum() == 3
    rep = analyze_run(
        run, AnalysisOptions(host_element="Eu", host_elements=("Ba", "F", "Br"), partial=True)
    )
    assert not rep.electronic.metal and rep.electronic.cbm == pytest.approx(4.842, abs=0.002)


# ------------------------------------------------------------ 7. non-finite values
@pytest.mark.parametrize(
    ("case", "field", "step"),
    [
        ("FeO_outcar_stars_energy", "final_energy", 28),
        ("FeO_outcar_nan_moment", "site_moments", 28),
        ("FeO_outcar_stars_moment", "site_moments", 28),
        ("MgO_vasprun_stars_energy", "final_energy", 3),
    ],
)
def test_non_finite_values_are_read_errors(case, field, step):
    with pytest.raises(RunReadError) as info:
        read_run(EDITED / case)
    msg = str(info.value)
    assert "non-finite or overflowed" in msg and f"{field} of ionic step {step}" in msg
    assert ("OUTCAR" in msg) or ("vasprun.xml" in msg)
    run = read_run(EDITED / case, strict=False)  # --partial: continues, marks it
    assert getattr(run, field) is None and field in run.unavailable
    assert not run.converged


def test_starred_energy_never_reaches_a_reaction(capsys):
    code, out, err = _cli(
        ["analyze", str(EDITED / "FeO_outcar_stars_energy"), "--cation", "Fe"], capsys
    )
    assert code == 2 and "final_energy of ionic step 28" in err and "Traceback" not in err
    case = str(EDITED / "FeO_outcar_stars_energy")
    code, out, err = _cli(["analyze", case, "--cation", "Fe", "--partial", "--json"], capsys)
    assert code == 0
    rep = json.loads(out)["runs"][0]
    assert rep["energy"] is None and "final_energy" in rep["unavailable"]


def test_moment_fallback_only_for_a_cut_table():
    run = read_run(EDITED / "FeO_outcar_cut_in_moments", strict=False)
    assert run.moments_step == 27
    assert "cut by the end of the file" in run.moments_note
    assert any("ionic step 28) is cut" in p for p in run.problems)
    with pytest.raises(RunReadError, match="site moments in the magnetization table"):
        read_outcar_moments(EDITED / "FeO_outcar_stars_moment")


# ------------------------------------------------------------ 8. settings consistency
def test_settings_consistency_names_encut_and_ispin(corpus_dir):
    runs = {c: read_run(corpus_dir / c) for c in ("MgO_bulk_prim", "Mg_hcp_metal", "O2_molecule")}
    problems = consistency_problems(runs)
    assert any(p.startswith("different ENCUT") and "585" in p for p in problems)
    assert any(p.startswith("different ISPIN") for p in problems)
    assert not any(
        p.startswith(("different PREC", "different LASPH", "different LREAL")) for p in problems
    )
    feo = read_run(corpus_dir / "FeO_U_relax_custodian")
    other = read_run(corpus_dir / "FeO_U_relax_custodian")
    other.parameters["PREC"], other.incar["PREC"] = "normal", "Normal"
    other.parameters["LASPH"] = other.incar["LASPH"] = True
    problems = consistency_problems({"a": feo, "b": other})
    assert any(p.startswith("different PREC") for p in problems)
    assert any(p.startswith("different LASPH") for p in problems)


# ------------------------------------------------------------ 12. exit codes, atomic writes
def test_partial_with_nothing_analysed_exits_2(tmp_path, capsys):
    code, _, err = _cli(["analyze", str(tmp_path / "nope"), "--partial"], capsys)
    assert code == 2 and "no run could be analysed" in err and "nope" in err


def test_json_report_written_atomically(corpus_dir, tmp_path, capsys, monkeypatch):
    out_json = tmp_path / "r.json"
    out_json.write_text('{"previous": true}\n')

    import polaronflow.fileio as fileio

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", full_disk)
    args = ["analyze", str(corpus_dir / "FeO_U_relax_custodian"), "--cation", "Fe"]
    code, _, err = _cli([*args, "--json-out", str(out_json)], capsys)
    assert code == 2 and "No space left" in err
    assert json.loads(out_json.read_text()) == {"previous": True}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
