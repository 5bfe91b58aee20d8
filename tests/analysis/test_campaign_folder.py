"""`polaronflow analyze RUNS/*` on a collected campaign folder: roles from the job names
(polaronflow.naming), not guessed from compositions (emulator runs + a real O2 box)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polaronflow.cli import main
from tests.analysis._emulated import emulate_static

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def campaign_dir(tmp_path_factory, corpus_dir):
    from polaronflow import naming
    from polaronflow.structures import builder
    from polaronflow.structures.host import gamma_wo3, make_supercell

    root = tmp_path_factory.mktemp("collected") / "RUNS"
    mg = builder.build_doped(ion="Mg")
    for u in (9.0, 5.0):
        emulate_static(mg.structure, root / naming.ramp_step_name("mg", u), u)
    emulate_static(mg.structure, root / naming.static_name("mg"))
    emulate_static(make_supercell(gamma_wo3(), (2, 2, 2)), root / naming.SUPERCELL_STATIC)
    # a real O2 box (PBEsol): made of host elements only, but a reference, not the host
    o2 = root / naming.reference_relax_name("O2")
    o2.mkdir()
    (o2 / "vasprun.xml.gz").symlink_to(corpus_dir / "O2_molecule" / "vasprun.xml.gz")
    return root


def test_analyze_collected_campaign_takes_roles_from_job_names(campaign_dir, tmp_path, capsys):
    out_json = tmp_path / "r.json"
    folders = sorted(str(p) for p in campaign_dir.iterdir())
    code = main(["analyze", *folders, "--json-out", str(out_json)])
    err = capsys.readouterr().err
    assert code == 0, (
        err
    )  # before: exit 2, the O2 box taken as the pristine WO3 ("give the multiple")
    data = json.loads(out_json.read_text())
    roles = {Path(r["path"]).name: r["role"] for r in data["runs"]}
    assert roles == {
        "mg-ramp-u9": "ramp-step",
        "mg-ramp-u5": "ramp-step",
        "mg-static": "ramp-static",
        "ref-O2-relax": "reference-relax",
        "wo3-supercell-static": "supercell-static",
    }
    labels = [lc["label"] for lc in data["lattice_changes"]]
    assert labels and all(label.endswith("wo3-supercell-static") for label in labels)
    assert not any("ref-O2" in label for label in labels)
    (ramp,) = data["ramps"]
    assert ramp["system"] == "mg" and [s["u"] for s in ramp["steps"]][:2] == [9.0, 5.0]
    assert all(s["level_depth"] is not None and s["polaron_ions"] for s in ramp["steps"])
    o2 = next(r for r in data["runs"] if r["role"] == "reference-relax")
    assert o2["electronic"]["in_gap_states"] == [] and o2["polarons"] is None
    pristine = next(r for r in data["runs"] if r["role"] == "supercell-static")
    assert pristine["polarons"]["electrons_donated"] == 0
    assert pristine["polarons"]["polaron_count"] == 0


def test_plots_of_a_campaign_folder(campaign_dir, tmp_path, capsys):
    plots = tmp_path / "plots"
    folders = sorted(str(p) for p in campaign_dir.iterdir())
    code = main(["analyze", *folders, "--plots", str(plots), "--partial"])
    assert code == 0, capsys.readouterr().err
    names = sorted(p.name for p in plots.iterdir())
    # the pristine host has no polaron map (no empty figures); the ramp is named by system
    assert "wo3-supercell-static_polarons.png" not in names
    assert "wo3-supercell-static_dos.png" in names and "mg-static_polarons.png" in names
    assert "u_ramp_mg.png" in names


def test_reproduce_of_synthetic_runs_reproduces_nothing(campaign_dir, tmp_path, capsys):
    code = main(["reproduce", str(campaign_dir), "--json"])
    out = capsys.readouterr().out
    assert code == 1
    data = json.loads(out)
    assert data["synthetic"] is True
    verdicts = {r["verdict"] for r in data["rows"]}
    assert "reproduced" not in verdicts
    code = main(["reproduce", str(campaign_dir)])
    out = capsys.readouterr().out
    assert code == 1 and "SYNTHETIC: nothing reproduced" in out
    # the O2 box here is PBEsol, not the paper's SCAN: said so
    assert "not the paper's method" in out and "PBESOL" in out
