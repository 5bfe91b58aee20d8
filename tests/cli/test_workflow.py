"""``polaronflow inputs``: folders, plan, bad input (exit 2, one line, nothing written)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLARONFLOW_")}
    env["HOME"] = str(tmp_path)
    env.pop("PMG_VASP_PSP_DIR", None)
    return env


def test_inputs_end_to_end(tmp_path):
    out = tmp_path / "d"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(
        [sys.executable, "-m", "polaronflow", "inputs", "--out", str(out), "--json"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
        timeout=120,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert r.returncode == 0, r.stderr
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # Whole command, imports included (pymatgen.io.vasp alone is ~2 s of it); the plan and
    # the writing are held to < 3 s in test_workflows_sets.
    assert cpu < 8.0, f"polaronflow inputs used {cpu:.1f} s CPU"
    rows = json.loads(r.stdout)
    folders = [row["folder"] for row in rows if row["folder"]]
    assert len(folders) == 25
    assert sorted(p.name for p in out.iterdir()) == sorted([*folders, "plan.json"])
    # no PMG_VASP_PSP_DIR: POTCAR.spec, never a half-made POTCAR
    for f in folders:
        assert (out / f / "POTCAR.spec").is_file() and not (out / f / "POTCAR").exists()
    plan = json.loads((out / "plan.json").read_text())
    assert plan["potcar_spec"] is True
    row = {x["name"]: x for x in rows}
    assert row["mg-ramp-u8"]["parents"] == ["mg-ramp-u9"]
    assert row["wo3-supercell-relax"]["n_atoms"] == 256
    assert row["wo3-supercell-relax"]["kpoints"] == "2x2x2"
    assert row["wo3-unit-relax"]["kpoints"] == "4x4x4"
    assert "seeded start structure" in row["mg-ramp-u8"]["note"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--schedule", "9,nan,5"], "not finite"),
        (["--schedule", "9,-1"], "negative"),
        (["--schedule", ","], "empty"),
        (["--ion", "Xe"], "unknown ion"),
        (["--ion", "Al"], "Al2O3"),
        (["--nupdown", "up"], "--nupdown"),
        (["--cavity", "x"], "--cavity"),
        (["--bogus"], "No such option"),
        (["--incar-yaml", "/no/such.yaml"], "does not exist"),
        (["--potcar", "Mg"], "ELEMENT=SYMBOL"),
    ],
)
def test_inputs_bad_input_exit_2_nothing_written(tmp_path, monkeypatch, capsys, args, message):
    from polaronflow.cli import main

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "d"
    code = main(["inputs", "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("polaronflow: error:") and err.count("\n") == 1
    assert message in err
    assert list(tmp_path.iterdir()) == []  # no output, no staging folder


def test_inputs_refuses_non_empty_folder_without_force(tmp_path, capsys):
    from polaronflow.cli import main

    out = tmp_path / "d"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert (
        main(["inputs", "--out", str(out), "--ion", "Mg", "--no-references", "--schedule", "5"])
        == 2
    )
    assert "--force" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert (
        main(
            [
                "inputs",
                "--out",
                str(out),
                "--ion",
                "Mg",
                "--no-references",
                "--schedule",
                "5",
                "--force",
                "--nupdown",
                "0",
                "--nupdown",
                "free",
                "--potcar",
                "Mg=Mg",
            ]
        )
        == 0
    )
    names = sorted(p.name for p in out.iterdir())
    assert "keep.txt" not in names
    assert {"mg-nupdown0-ramp-u5", "mg-nupdown0-static", "mg-ramp-u5", "mg-static"} <= set(names)
    from pymatgen.io.vasp import Incar

    assert Incar.from_file(out / "mg-nupdown0-static" / "INCAR")["NUPDOWN"] == 0
    assert "NUPDOWN" not in Incar.from_file(out / "mg-static" / "INCAR")
    assert (out / "mg-static" / "POTCAR.spec").read_text().split() == ["W_sv", "O", "Mg"]


_SMALL = ["--ion", "Mg", "--no-references", "--schedule", "5"]


@pytest.mark.parametrize("gc_enabled", [True, False])
def test_inputs_in_process_returns_and_restores_gc(tmp_path, capsys, gc_enabled):
    import gc

    import polaronflow.cli as cli

    was = gc.isenabled()
    (gc.enable if gc_enabled else gc.disable)()
    try:
        assert cli.main(["inputs", "--out", str(tmp_path / "d"), *_SMALL]) == 0
        assert gc.isenabled() is gc_enabled
    finally:
        (gc.enable if was else gc.disable)()
    assert "input folders in" in capsys.readouterr().out
    # the request to skip the teardown is only acted on by the console script (run)
    assert cli._SKIP_TEARDOWN is True
    assert cli.main(["inputs", "--out", str(tmp_path / "d"), *_SMALL]) == 2  # not empty
    assert cli._SKIP_TEARDOWN is False


class _Exited(Exception):
    pass


@pytest.mark.parametrize(
    ("args", "fast", "code"),
    [
        (["inputs", "--out", "d", *_SMALL], True, 0),
        (["inputs", "--out", "d", "--schedule", "9,-1"], False, 2),  # an error: normal exit
        (["inputs", "--help"], False, 0),  # another outcome of inputs: normal exit
    ],
)
def test_console_script_skips_teardown_only_after_inputs_succeeded(
    tmp_path, monkeypatch, capsys, args, fast, code
):
    import atexit
    import os
    import threading

    import polaronflow.cli as cli

    calls: list[str] = []

    def fake_exit(status):
        calls.append(f"_exit {status}")
        raise _Exited

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "_exit", fake_exit)
    monkeypatch.setattr(atexit, "_run_exitfuncs", lambda: calls.append("atexit"))
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    monkeypatch.setattr(sys, "argv", ["polaronflow", *args])
    if fast:
        with pytest.raises(_Exited):
            cli.run()
        # output first, then the atexit handlers (logging, coverage), then _exit
        assert calls == ["atexit", f"_exit {code}"]
        assert "input folders in d" in capsys.readouterr().out
        assert (tmp_path / "d" / "plan.json").is_file()
    else:
        with pytest.raises(SystemExit) as exc:
            cli.run()
        assert exc.value.code == code
        assert calls == []


def test_console_script_exits_normally_while_another_thread_runs(tmp_path, monkeypatch):
    import os
    import threading

    import polaronflow.cli as cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "_exit", lambda status: pytest.fail("teardown skipped"))
    monkeypatch.setattr(threading, "active_count", lambda: 2)
    monkeypatch.setattr(sys, "argv", ["polaronflow", "inputs", "--out", "d", *_SMALL])
    with pytest.raises(SystemExit) as exc:
        cli.run()
    assert exc.value.code == 0


@pytest.mark.parametrize(
    ("flags", "checked", "reseed", "analysis"),
    [
        ([], True, False, True),
        (["--no-polaron-check", "--no-analysis"], False, False, False),
        (["--reseed"], True, True, True),
    ],
)
def test_submit_check_and_analysis_flags(tmp_path, flags, checked, reseed, analysis):
    import json

    from polaronflow.workflows.runtime.submit import embedded_launchpad

    project = tmp_path / "p"
    from polaronflow.cli import main

    code = main(["submit", "--project-dir", str(project), "--potcar-spec", *_SMALL, *flags])
    assert code == 0
    with embedded_launchpad(project, timeout=30) as lp:
        fws = {fw["name"]: fw for fw in lp.fireworks.find({}, {"name": 1, "spec": 1})}
    assert ("campaign-analysis" in fws) is analysis
    spec = json.dumps(fws["mg-ramp-u5"]["spec"], default=str)
    assert ("PolaronCheckedVaspMaker" in spec) is checked
    if checked:
        assert f'"reseed_on_delocalisation": {str(reseed).lower()}' in spec


@pytest.mark.parametrize(
    "args, instead",
    [
        (["launch"], "jf runner start"),
        (["rerun", "--fizzled"], "jf job rerun"),
        (["delete", "--yes"], "jf flow delete"),
    ],
)
def test_fireworks_commands_refuse_a_jobflow_remote_campaign(
    tmp_path, monkeypatch, capsys, args, instead
):
    """With runner jobflow-remote in the settings, launch/rerun/delete would act on the default
    embedded store, not where the campaign is: one line naming jf's command, exit 2, nothing
    touched; a store named on the command line is still honoured."""
    from polaronflow.cli import main

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("POLARONFLOW_RUNNER", "jobflow-remote")
    monkeypatch.setenv("POLARONFLOW_JFREMOTE_PROJECT", "mylab")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("polaronflow: error:") and err.count("\n") == 1, err
    assert "runner is jobflow-remote (project mylab)" in err and instead in err, err
    assert list(tmp_path.iterdir()) == []
    # a store named explicitly: the FireWorks command goes on (and finds no project there)
    assert main([*args, "--project-dir", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "no polaronflow project in" in err and "jobflow-remote" not in err, err
