"""atomate2's powerups reach every VASP job of the campaign, also those made at run time.

The k-point convergence statics of the references are created while the campaign runs; they
are made from a VASP maker the loop holds as an attribute, so jobflow's nested
``update_maker_kwargs`` (what ``update_user_incar_settings`` uses) updates them too.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _incar(folder: Path):
    from pymatgen.io.vasp import Incar

    gz = folder / "INCAR.gz"
    text = gzip.open(gz, "rt").read() if gz.exists() else (folder / "INCAR").read_text()
    return Incar.from_str(text)


def test_encut_powerup_reaches_every_vasp_job(mock_vasp, tmp_path, monkeypatch):
    from atomate2.vasp.powerups import update_user_incar_settings
    from jobflow import JobStore, run_locally
    from maggma.stores import MemoryStore

    from polaronflow import naming
    from polaronflow.emulator.fast import fast_parameters_file
    from polaronflow.workflows.campaign.maker import build_campaign

    flow = build_campaign(
        ions=["Mg"],
        supercell=(2, 1, 1),
        schedule=(9, 5),
        parameters_file=fast_parameters_file(tmp_path / "fast_parameters.yaml"),
    )
    flow = update_user_incar_settings(flow, {"ENCUT": 520})
    monkeypatch.chdir(tmp_path)
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    run_locally(flow, store=store, create_folders=True, log=False, ensure_success=True)

    ran = dict(zip(mock_vasp.job_names, mock_vasp.runs, strict=True))
    roles = {name: naming.parse_job_name(name).role for name in ran}
    # every kind of VASP job ran, the run-time k-point statics included
    assert set(roles.values()) == {
        naming.Role.UNIT_RELAX,
        naming.Role.SUPERCELL_RELAX,
        naming.Role.SUPERCELL_STATIC,
        naming.Role.RAMP_STEP,
        naming.Role.RAMP_STATIC,
        naming.Role.REFERENCE_RELAX,
        naming.Role.KPOINT_STATIC,
    }
    kstatics = [n for n, r in roles.items() if r is naming.Role.KPOINT_STATIC]
    assert len(kstatics) >= 5  # MgO and Mg need >= 3 meshes each (two differences), O2 one
    encut = {name: _incar(folder)["ENCUT"] for name, folder in ran.items()}
    assert set(encut.values()) == {520}, {n: e for n, e in encut.items() if e != 520}

    # each loop wrote its verdict beside its converged static
    for phase in ("MgO", "Mg", "O2"):
        loop = [n for n in kstatics if naming.parse_job_name(n).phase == phase]
        verdict = json.loads((ran[loop[-1]] / "kpoint_convergence.json").read_text())
        assert verdict["converged"] is True, verdict
        assert len(verdict["meshes"]) == len(loop)
        if phase != "O2":
            energies = verdict["energies_per_atom"]
            last_two = [abs(b - a) for a, b in zip(energies[-3:], energies[-2:], strict=False)]
            assert all(d < verdict["tolerance"] for d in last_two)

    _method_robustness(ran, roles)


def _highest_occupied(folder: Path) -> float:
    import numpy as np
    from pymatgen.io.vasp import Vasprun

    vr = Vasprun(str(next(folder.glob("vasprun.xml*"))), parse_potcar_file=False)
    return max(
        float(np.asarray(e)[..., 0][np.asarray(e)[..., 1] >= 0.5].max())
        for e in vr.eigenvalues.values()
    )


def _method_robustness(ran: dict[str, Path], roles: dict) -> None:
    """Issue 14, deliverable 3, as the campaign runs it (mock VASP)."""
    from polaronflow import naming
    from polaronflow.workflows.campaign.cell import VERDICT_FILE

    incars = {name: _incar(folder) for name, folder in ran.items()}
    # (a) metal smearing only for the metal reference: MP for its relaxation, tetrahedron
    # (Blöchl) for its energies; every insulator keeps Gaussian 0.05 eV
    for name, incar in incars.items():
        job = naming.parse_job_name(name)
        if job.phase == "Mg":
            want = (1, 0.2) if job.role is naming.Role.REFERENCE_RELAX else (-5, 0.05)
            assert (incar["ISMEAR"], incar["SIGMA"]) == want, name
        else:
            assert (incar["ISMEAR"], incar["SIGMA"]) == (0, 0.05), name
        # (d) kinetic-energy density mixed in every (meta-GGA) run
        assert incar["LMIXTAU"] is True, name
        # (e) the triplet O2, fixed, and checked after each run
        if job.phase == "O2":
            assert incar["NUPDOWN"] == 2, name
            report = json.loads((ran[name] / "moment_check.json").read_text())
            assert report["ok"] is True and abs(report["total_moment"] - 2.0) <= 0.1, report
        elif job.phase is not None:
            assert "NUPDOWN" not in incar, name
    # (c) the unit cell relaxed again from its CONTCAR until the volume settled; the verdict is
    # in the last relaxation's folder and the supercell was built from that relaxation
    units = [n for n, r in roles.items() if r is naming.Role.UNIT_RELAX]
    last = naming.last_relaxation(units)
    assert units[0] == "wo3-unit-relax" and len(units) >= 2 and last == units[-1]
    verdict = json.loads((ran[last] / VERDICT_FILE).read_text())
    assert verdict["converged"] is True and verdict["relaxations"] == len(units)
    assert abs(verdict["volume_change"]) < 0.005 <= abs(verdict["history"][0]["volume_change"])
    from pymatgen.core import Structure

    relaxed = Structure.from_file(next(ran[last].glob("CONTCAR*")))
    supercell = Structure.from_file(next(ran["wo3-supercell-relax"].glob("POSCAR*")))
    assert supercell.volume == pytest.approx(2 * relaxed.volume, rel=1e-6)
    # (g) the DOS window of the statics that follow a run: around the previous run's highest
    # occupied level (10 eV below, 8 eV above), not the whole semicore range
    for static, previous in (
        ("wo3-supercell-static", "wo3-supercell-relax"),
        ("mg-static", "mg-ramp-u5"),
    ):
        level = _highest_occupied(ran[previous])
        assert incars[static]["EMIN"] == pytest.approx(level - 10.0, abs=1e-3), static
        assert incars[static]["EMAX"] == pytest.approx(level + 8.0, abs=1e-3), static
    kstatics = [n for n, r in roles.items() if r is naming.Role.KPOINT_STATIC]
    assert not any("EMIN" in incars[n] for n in kstatics)  # no previous run, no window


def test_without_the_powerup_the_paper_cutoff_stays(tmp_path):
    """Control: the same campaign without the powerup keeps ENCUT = 500 in every maker."""
    from atomate2.vasp.jobs.base import BaseVaspMaker

    from polaronflow.emulator.fast import fast_parameters_file
    from polaronflow.workflows.campaign.convergence import KPointConvergenceMaker
    from polaronflow.workflows.campaign.maker import build_campaign

    flow = build_campaign(
        ions=["Mg"],
        supercell=(2, 1, 1),
        schedule=(9, 5),
        parameters_file=fast_parameters_file(tmp_path / "fast_parameters.yaml"),
    )
    makers = []
    for job, _ in flow.iterflow():
        if isinstance(job.maker, BaseVaspMaker):
            makers.append(job.maker)
        makers += [
            a.static_maker for a in job.function_args if isinstance(a, KPointConvergenceMaker)
        ]
    assert len(makers) >= 10
    for maker in makers:
        assert "ENCUT" not in maker.input_set_generator.user_incar_settings
        assert maker.input_set_generator.config_dict["INCAR"]["ENCUT"] == 500
