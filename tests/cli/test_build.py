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
