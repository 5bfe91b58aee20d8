"""Idempotent submission: the same campaign twice adds nothing; ``--force`` overrides."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore")

SMALL = {"ions": ["Mg"], "references": False, "schedule": (9, 5), "supercell": (2, 1, 1)}


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POLARONFLOW_", "MONGOMOCK_", "FW_", "JOBFLOW_"))
    }
    env["HOME"] = str(tmp_path)
    return env


def _fingerprint(**changes):
    from polaronflow.workflows.campaign.fingerprint import campaign_fingerprint
    from polaronflow.workflows.campaign.options import make_options

    return campaign_fingerprint(make_options(**(SMALL | changes)))


def test_fingerprint_follows_structures_and_settings_not_runtime(tmp_path):
    from polaronflow.emulator.fast import fast_parameters_file

    base = _fingerprint()
    assert len(base) == 64 and base == _fingerprint()
    # run-time settings are not the campaign
    assert _fingerprint(vasp_cmd="srun vasp_std", walltime=3600, potcar_spec=True) == base
    # the science is
    changed = {
        "schedule": (9, 6),
        "stretch": 0.05,
        "seed_moment": 0.8,
        "nupdown": [2],
        "supercell": (1, 2, 1),
        "ions": ["Li"],
        "potcars": {"Mg": "Mg"},
        "parameters_file": fast_parameters_file(tmp_path / "fast.yaml"),
    }
    prints = {key: _fingerprint(**{key: value}) for key, value in changed.items()}
    assert base not in prints.values() and len(set(prints.values())) == len(prints)
    # the same parameter file content under another name is the same campaign
    copy = tmp_path / "copy.yaml"
    copy.write_text((tmp_path / "fast.yaml").read_text())
    assert _fingerprint(parameters_file=copy) == prints["parameters_file"]
    # a host structure given as a file is identified by its content, not its path
    from polaronflow.structures.host import gamma_wo3

    gamma_wo3().to(filename=str(tmp_path / "host.cif"))
    (tmp_path / "elsewhere").mkdir()
    moved = tmp_path / "elsewhere" / "renamed.cif"
    moved.write_text((tmp_path / "host.cif").read_text())
    assert _fingerprint(host=tmp_path / "host.cif") == _fingerprint(host=moved)
    # the same in another process (no dependence on hash seeds or object ids)
    code = (
        "from polaronflow.workflows.campaign.options import make_options\n"
        "from polaronflow.workflows.campaign.fingerprint import campaign_fingerprint\n"
        f"print(campaign_fingerprint(make_options(**{SMALL!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_env(tmp_path) | {"PYTHONHASHSEED": "123"},
        check=True,
    ).stdout
    assert out.strip() == base


def _check_twice_then_force(settings) -> None:
    from fireworks import LaunchPad  # noqa: F401  (FireWorks must be importable)

    from polaronflow.workflows.runtime.status import campaign_status
    from polaronflow.workflows.runtime.submit import submit_campaign

    first = submit_campaign(settings=settings, **SMALL)
    assert not first.already_submitted and first.campaign_id
    again = submit_campaign(settings=settings, **SMALL)
    assert again.already_submitted
    assert again.fw_ids == first.fw_ids and again.campaign_id == first.campaign_id
    assert len(campaign_status(settings).workflows) == 1
    forced = submit_campaign(settings=settings, force=True, **SMALL)
    assert not forced.already_submitted and set(forced.fw_ids).isdisjoint(first.fw_ids)
    other = submit_campaign(settings=settings, **(SMALL | {"schedule": (9, 6)}))
    assert not other.already_submitted
    wfs = campaign_status(settings).workflows
    assert len(wfs) == 3
    assert [w.campaign_id for w in wfs].count(first.campaign_id) == 2


def test_resubmission_embedded(tmp_path):
    from polaronflow.settings import load_settings

    _check_twice_then_force(load_settings(project_dir=tmp_path / "project"))


def test_resubmission_mongodb(mongo_uri, tmp_path):
    from urllib.parse import urlparse

    from polaronflow.settings import load_settings

    url = urlparse(mongo_uri)
    lp_file = tmp_path / "my_launchpad.yaml"
    lp_file.write_text(
        f"host: {url.hostname}\nport: {url.port}\nname: pf_idem_{uuid.uuid4().hex}\n"
        "mongoclient_kwargs: {serverSelectionTimeoutMS: 20000}\n"
    )
    _check_twice_then_force(load_settings(launchpad_file=lp_file, project_dir=tmp_path / "project"))


def test_cli_resubmit_prints_ids_exit_0_and_force(tmp_path):
    project = tmp_path / "project"
    args = [
        "submit",
        "--potcar-spec",
        "--ion",
        "Mg",
        "--no-references",
        "--schedule",
        "9,5",
        "--supercell",
        "2",
        "1",
        "1",
        "--project-dir",
        str(project),
    ]

    def run(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "polaronflow", *args, *extra],
            cwd=tmp_path,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=240,
        )

    first = run()
    assert first.returncode == 0 and "submitted workflow" in first.stdout, first.stderr
    again = run()
    assert again.returncode == 0, again.stderr
    assert "already submitted" in again.stdout and "FireWorks ids 1-10" in again.stdout
    assert "--force" in again.stdout
    forced = run("--force")
    assert forced.returncode == 0 and "FireWorks ids 11-20" in forced.stdout, forced.stderr
    from polaronflow.workflows.runtime.submit import embedded_launchpad

    with embedded_launchpad(project, timeout=30) as lp:
        assert len(lp.get_wf_ids()) == 2
