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
