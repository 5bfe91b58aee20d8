"""The embedded (server-free) LaunchPad under concurrent CLI calls: nothing lost, never corrupt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore")

#: Test numbers quoted in README's "Reliability" table.
SCHEDULES = ["9,5", "9,5", "9,6", "9,7", "8,5"]  # the first campaign twice (idempotency)
N_STATUS = 3
N_FW_PER_CAMPAIGN = 10  # 8 jobs + the unit cell's volume check + the analysis job


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POLARONFLOW_", "MONGOMOCK_", "FW_", "JOBFLOW_"))
    }
    env["HOME"] = str(tmp_path)
    return env


def _parses(project: Path) -> None:
    import bson.json_util

    text = (project / "launchpad.json").read_text(encoding="utf-8")
    data = bson.json_util.loads(text)
    assert isinstance(data, dict)


def test_eight_concurrent_cli_calls_lose_nothing(tmp_path):
    project = tmp_path / "project"
    common = ["--project-dir", str(project)]
    small = ["--ion", "Mg", "--no-references", "--supercell", "2", "1", "1", "--potcar-spec"]
    commands = [["submit", *small, "--schedule", s, *common] for s in SCHEDULES]
    commands += [["status", "--json", *common] for _ in range(N_STATUS)]
    assert len(commands) == 8
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "polaronflow", *cmd],
            cwd=tmp_path,
            env=_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for cmd in commands
    ]
    # while they run, the file on disk is always a complete store (atomic replace)
    reads = 0
    deadline = time.monotonic() + 240
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        if (project / "launchpad.json").exists():
            _parses(project)
            reads += 1
        time.sleep(0.05)
    results = [(p, *p.communicate(timeout=60)) for p in procs]
    for p, _out, err in results:
        assert p.returncode == 0, err
        assert err.strip() == "", err
    assert reads > 0
    _parses(project)
    submits = [out for p, out, _ in results if "submit" in p.args]
    added = [out for out in submits if "submitted workflow" in out]
    refused = [out for out in submits if "already submitted" in out]
    assert len(added) == len(set(SCHEDULES)) and len(refused) == 1
    # every status call saw whole workflows only
    for p, out, _ in results:
        if "status" in p.args:
            status = json.loads(out)
            for wf in status["workflows"]:
                assert len(wf["fireworks"]) == N_FW_PER_CAMPAIGN
    from polaronflow.workflows.runtime.status import campaign_status
    from polaronflow.workflows.runtime.submit import embedded_jobstore, embedded_launchpad

    with embedded_launchpad(project, timeout=30) as lp:
        wf_ids = lp.get_wf_ids()
        assert len(wf_ids) == len(set(SCHEDULES))
        ids = sorted(fw["fw_id"] for fw in lp.fireworks.find({}, {"fw_id": 1}))
        # no id handed out twice, none skipped
        assert ids == list(range(1, len(set(SCHEDULES)) * N_FW_PER_CAMPAIGN + 1))
    from polaronflow.settings import load_settings

    status = campaign_status(load_settings(project_dir=project))
    assert len({wf.campaign_id for wf in status.workflows}) == len(set(SCHEDULES))
    # the JobStore database opens and is queryable after the concurrent runs
    store = embedded_jobstore(project)
    store.connect()
    assert store.count() == 0
    store.close()
    # no temporary files of interrupted writes are left behind
    assert not list(project.glob(".launchpad.json.*"))
