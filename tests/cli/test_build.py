from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from pymatgen.core import Lattice, Structure

from polaronflow.cli import main


def run_cli(*args: str) -> int:
    return main(list(args))


def test_build_mg_writes_poscar_and_manifest(tmp_path, capsys):
    out = tmp_path / "d"
    assert run_cli("build", "--ion", "Mg", "--out", str(out)) == 0
    s = Structure.from_file(out / "POSCAR")
    assert s.composition.formula == "Mg1 W64 O192"
    host = Structure.from_file(out / "POSCAR.host")
    assert host.composition.formula == "W64 O192"
    manifest = json.loads((out / "manifest.json").read_text())
    seeds = manifest["polaron_seeds"]
    assert sorted(seed["shell"] for seed in seeds) == [1, 2]
    assert manifest["doping"]["x_fraction"] == "1/64"
    assert manifest["doping"]["electrons_donated"] == 2
    assert manifest["doping"]["dopant_indices"] == [256]
    assert "Woodward" in manifest["provenance"]["lattice_source"]
    assert sorted(int(k) for k in manifest["magmom_nonzero"]) == sorted(s["w_index"] for s in seeds)


def test_build_protons(tmp_path):
    out = tmp_path / "h"
    assert run_cli("build", "--protons", "2", "--placement", "near", "--out", str(out)) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["formula"] == "H2W64O192"
    assert manifest["doping"]["placement"] == "near"
    # --ion 2H is the same build, as in inputs/submit/demo
    same = tmp_path / "h2"
    assert run_cli("build", "--ion", "2H", "--placement", "near", "--out", str(same)) == 0
    assert (same / "POSCAR").read_text() == (out / "POSCAR").read_text()
    assert json.loads((same / "manifest.json").read_text())["doping"] == manifest["doping"]


def test_build_explicit_polarons_and_enumeration(tmp_path):
    out = tmp_path / "e"
    assert run_cli("build", "--polarons", "37,0", "--enumerate", "1", "--out", str(out)) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(s["w_index"] for s in manifest["polaron_seeds"]) == [0, 37]
    assert len(manifest["configurations"]) == 28  # C(8, 2): no symmetry left with one Mg


@pytest.mark.parametrize(
    "args",
    [
        ["--ion", "Xx"],
        ["--cavity", "64"],
        ["--protons", "500"],
        ["--supercell", "0", "2", "2"],
        ["--polarons", "37"],
        ["--polarons", "3,7,x"],
        ["--ion", "Mg", "--protons", "2"],
        ["--ion", "0H"],
        ["--ion", "2H", "--protons", "2"],
        ["--host", "/nonexistent/host.cif"],
        ["--stretch", "0.9"],
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, args):
    out = tmp_path / "bad"
    assert run_cli("build", *args, "--out", str(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("polaronflow: error:")
    assert "Traceback" not in err[0]
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no stage folder left behind


def test_non_wo3_host_rejected(tmp_path, capsys):
    cif = tmp_path / "mgo.cif"
    Structure(Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(filename=str(cif))
    assert run_cli("build", "--host", str(cif), "--out", str(tmp_path / "x")) == 2
    assert "has no W" in capsys.readouterr().err


def test_existing_output_needs_force(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    assert run_cli("build", "--out", str(out)) == 2
    assert (out / "keep.txt").read_text() == "precious"
    assert run_cli("build", "--out", str(out), "--force") == 0
    assert (out / "POSCAR").exists()


def test_sites_table(capsys):
    assert run_cli("sites", "--supercell", "1", "1", "1") == 0
    out = capsys.readouterr().out
    assert "A-site cavities" in out and "W shells around cavity 0" in out


def test_console_script_exit_status_and_debug(tmp_path):
    exe = shutil.which("polaronflow", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert exe, "console script polaronflow not installed"
    proc = subprocess.run(
        [exe, "build", "--ion", "Xx", "--out", str(tmp_path / "d")], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    proc = subprocess.run(
        [exe, "--debug", "build", "--ion", "Xx", "--out", str(tmp_path / "d")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    proc = subprocess.run([exe, "build", "--bogus"], capture_output=True, text=True)
    assert proc.returncode == 2 and "No such option" in proc.stderr


def test_build_enumerate_prints_and_writes_candidates(tmp_path, capsys):
    from polaronflow.structures.candidates import CandidateSet

    out = tmp_path / "enum"
    assert run_cli("build", "--ion", "Mg", "--enumerate", "1,2", "--out", str(out)) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "992 configurations in 124 classes (tolerance 0.3 Å)" in text
    assert "cavity 0 (orbit 0, 32 equivalent cavities): 496 configurations, 496" in text
    cset = CandidateSet.model_validate_json((out / "candidates.json").read_text())
    assert [g.n_classes for g in cset.groups] == [63, 61]
    assert len(cset.candidates) == 248 and cset.nupdown == [0, 2]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["candidates"]["n_classes"] == 124
    assert manifest["candidates"]["file"] == "candidates.json"


def test_build_enumerate_exact_one_cavity_one_spin_state(tmp_path):
    out = tmp_path / "exact"
    args = ["--enumerate", "1,2", "--class-tolerance", "0", "--enumerate-cavities", "32"]
    assert run_cli("build", *args, "--nupdown", "2", "--out", str(out)) == 0
    data = json.loads((out / "candidates.json").read_text())
    assert data["tolerance"] is None
    assert [g["cavity_index"] for g in data["groups"]] == [32]
    assert data["n_classes"] == 496 and {c["nupdown"] for c in data["candidates"]} == {2}
    first = data["candidates"][0]["seeds"][0]
    assert first["vasp_ion"] == first["index"] + 1 and first["label"].startswith("W")


def test_build_polarons_by_ion_number_and_distance(tmp_path):
    a, b = tmp_path / "ion", tmp_path / "d"
    assert run_cli("build", "--polarons", "ion:38,ion:1", "--out", str(a)) == 0
    seeds = json.loads((a / "manifest.json").read_text())["polaron_seeds"]
    assert [(s["w_index"], s["vasp_ion"]) for s in seeds] == [(37, 38), (0, 1)]
    # the distances of those two W, asked as d:, with a tolerance below the gaps around them
    d1, d2 = (s["distance_to_dopant"] for s in seeds)
    args = ["--polarons", f"d:{d1},d:{d2}", "--distance-tolerance", "0.005"]
    assert run_cli("build", *args, "--out", str(b)) == 0
    manifest = json.loads((b / "manifest.json").read_text())
    assert [s["w_index"] for s in manifest["polaron_seeds"]] == [37, 0]
    assert manifest["seed_rule"]["distance_tolerance"] == 0.005
    assert manifest["seed_rule"]["request"] == [f"d:{d1}", f"d:{d2}"]


def test_sites_json_lists_every_w(capsys):
    assert run_cli("sites", "--json", "--cavity", "32") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cavity"]["index"] == 32 and data["cavity"]["orbit"] == 1
    assert len(data["w_sites"]) == 64
    assert [s["count"] for s in data["shells"][:3]] == [8, 24, 24]
    assert all(w["vasp_ion"] == w["index"] + 1 for w in data["w_sites"])
    distances = [w["distance"] for w in data["w_sites"]]
    assert distances == sorted(distances)
