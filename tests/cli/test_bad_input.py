"""Bad input sweep: every CLI command fed malformed values fails cleanly and writes nothing.

Each case runs the real ``polaronflow`` console entry point in a fresh process, in its own
folder, with its own HOME and TMPDIR. A case passes when the process exits with status 2,
prints exactly one line to stderr (``polaronflow: error: ...``) and no traceback, leaves its
folder, HOME and TMPDIR exactly as they were (no output folder, no stray temporary folder),
and never shows the LaunchPad credentials. The cases run concurrently in one fixture (each is
a short-lived process) and are reported one test per case.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

USER = "alice_user"
PASSWORD = "S3cretPassw0rd"

# A closed port on this host (discard, 9), a short server-selection timeout: the MongoDB
# client fails in well under a second instead of its default 30 s.
BAD_LAUNCHPAD = f"""host: 127.0.0.1
port: 9
name: fireworks
username: {USER}
password: {PASSWORD}
authsource: admin
mongoclient_kwargs:
  serverSelectionTimeoutMS: 300
  connectTimeoutMS: 300
"""
URI_LAUNCHPAD = f"""host: mongodb://{USER}:{PASSWORD}@127.0.0.1:9/fireworks?authSource=admin
uri_mode: true
name: fireworks
mongoclient_kwargs:
  serverSelectionTimeoutMS: 300
"""

SMALL = ["--supercell", "2", "1", "1", "--no-references", "--ion", "Mg", "--schedule", "9,5"]

#: id -> argv after ``polaronflow``. Paths are relative to the case folder (see _inputs).
CASES: dict[str, list[str]] = {
    # build
    "build-supercell-not-int": ["build", "--out", "out", "--supercell", "a", "b", "c"],
    "build-supercell-zero": ["build", "--out", "out", "--supercell", "0", "2", "2"],
    "build-host-missing": ["build", "--out", "out", "--host", "missing.cif"],
    "build-host-empty-cif": ["build", "--out", "out", "--host", "empty.cif"],
    "build-host-binary-cif": ["build", "--out", "out", "--host", "junk.cif"],
    "build-host-binary-poscar": ["build", "--out", "out", "--host", "junk/POSCAR"],
    "build-host-text-poscar": ["build", "--out", "out", "--host", "text/POSCAR"],
    "build-stretch-not-float": ["build", "--out", "out", "--stretch", "abc"],
    "build-stretch-too-large": ["build", "--out", "out", "--stretch", "5"],
    "build-seed-moment-nan": ["build", "--out", "out", "--seed-moment", "nan"],
    "build-unknown-ion": ["build", "--out", "out", "--ion", "Xx"],
    "build-negative-protons": ["build", "--out", "out", "--protons", "-1"],
    "build-polaron-index-out-of-range": ["build", "--out", "out", "--polarons", "99999"],
    "build-polarons-not-int": ["build", "--out", "out", "--polarons", "a,b"],
    "build-cavity-not-int": ["build", "--out", "out", "--cavity", "x"],
    "build-out-is-a-file": ["build", "--out", "junk.cif"],
    # sites
    "sites-cavity-not-int": ["sites", "--cavity", "abc"],
    "sites-cavity-out-of-range": ["sites", "--cavity", "99999"],
    "sites-host-binary": ["sites", "--host", "junk/POSCAR"],
    "sites-host-empty": ["sites", "--host", "empty.cif"],
    "sites-supercell-zero": ["sites", "--supercell", "0", "0", "0"],
    "sites-max-distance-negative": ["sites", "--max-distance", "-1"],
    # inputs
    "inputs-schedule-not-number": ["inputs", "--out", "out", "--schedule", "9,abc"],
    "inputs-schedule-negative": ["inputs", "--out", "out", "--schedule", "9,-5"],
    "inputs-final-isif-out-of-range": ["inputs", "--out", "out", "--final-isif", "42"],
    "inputs-host-binary": ["inputs", "--out", "out", "--host", "junk.cif"],
    "inputs-incar-yaml-empty": ["inputs", "--out", "out", "--incar-yaml", "empty.yaml"],
    "inputs-incar-yaml-binary": ["inputs", "--out", "out", "--incar-yaml", "junk.bin"],
    "inputs-incar-yaml-missing": ["inputs", "--out", "out", "--incar-yaml", "missing.yaml"],
    "inputs-unknown-ion": ["inputs", "--out", "out", "--ion", "Xx"],
    "inputs-nupdown-not-int": ["inputs", "--out", "out", "--nupdown", "foo"],
    "inputs-potcar-malformed": ["inputs", "--out", "out", "--potcar", "Mg"],
    "inputs-supercell-not-int": ["inputs", "--out", "out", "--supercell", "a", "b", "c"],
    # submit
    "submit-launchpad-bad-credentials": [
        "submit",
        "--launchpad",
        "badlp.yaml",
        "--project-dir",
        "proj",
        *SMALL,
    ],
    "submit-launchpad-uri-credentials": [
        "submit",
        "--launchpad",
        "urilp.yaml",
        "--project-dir",
        "proj",
        *SMALL,
    ],
    "submit-launchpad-missing": ["submit", "--launchpad", "missing.yaml", "--project-dir", "proj"],
    "submit-launchpad-binary": ["submit", "--launchpad", "junk.bin", "--project-dir", "proj"],
    "submit-launchpad-empty": ["submit", "--launchpad", "empty.yaml", "--project-dir", "proj"],
    "submit-jobstore-binary": [
        "submit",
        "--launchpad",
        "badlp.yaml",
        "--jobstore",
        "junk.bin",
        "--project-dir",
        "proj",
    ],
    "submit-config-binary": ["submit", "--config", "junk.bin", "--project-dir", "proj"],
    "submit-walltime-not-int": ["submit", "--walltime", "abc", "--project-dir", "proj"],
    "submit-schedule-not-number": ["submit", "--schedule", "x", "--project-dir", "proj"],
    "submit-host-binary": ["submit", "--host", "junk/POSCAR", "--project-dir", "proj"],
    # status
    "status-launchpad-bad-credentials": ["status", "--launchpad", "badlp.yaml", "--json"],
    "status-launchpad-uri-credentials": ["status", "--launchpad", "urilp.yaml"],
    "status-launchpad-binary": ["status", "--launchpad", "junk.bin"],
    "status-launchpad-empty": ["status", "--launchpad", "empty.yaml"],
    "status-launchpad-missing": ["status", "--launchpad", "missing.yaml"],
    "status-config-binary": ["status", "--config", "junk.bin"],
    "status-project-dir-is-a-file": ["status", "--project-dir", "junk.bin"],
    # init
    "init-unknown-queue": ["init", "--out", "out", "--queue", "foo", "--project-dir", "proj"],
    "init-out-is-a-file": ["init", "--out", "junk.bin", "--project-dir", "proj"],
    "init-project-dir-is-a-file": ["init", "--out", "out", "--project-dir", "junk.bin"],
    "init-queue-not-a-name": ["init", "--out", "out", "--queue", "123", "--project-dir", "proj"],
    "init-unknown-runner": ["init", "--out", "out", "--runner", "celery", "--project-dir", "proj"],
    "init-jf-project-not-a-name": [
        "init",
        "--out",
        "out",
        "--runner",
        "jobflow-remote",
        "--jf-project",
        "../x",
        "--project-dir",
        "proj",
    ],
    "submit-unknown-runner": ["submit", "--runner", "celery", "--project-dir", "proj"],
    # without jobflow-remote: the install hint; with it: no such project
    "submit-jfremote-no-project": [
        "submit",
        "--runner",
        "jobflow-remote",
        "--jf-project",
        "missing",
        "--project-dir",
        "p",
    ],
    "sites-supercell-too-few": ["sites", "--supercell", "1", "1"],
    "build-o-indices-not-int": ["build", "--out", "out", "--protons", "2", "--o-indices", "a,b"],
    # analyze
    "analyze-missing-folder": ["analyze", "missing"],
    "analyze-folder-without-runs": ["analyze", "emptydir"],
    "analyze-empty-files": ["analyze", "emptyrun"],
    "analyze-binary-vasprun-outcar": ["analyze", "junkrun"],
    "analyze-binary-outcar-file": ["analyze", "junkrun/OUTCAR"],
    "analyze-not-gzip-vasprun-gz": ["analyze", "gzrun"],
    "analyze-text-vasprun": ["analyze", "textrun"],
    "analyze-truncated-gzip": ["analyze", "cutgz"],
    "analyze-binary-with-json-out": ["analyze", "junkrun", "--json-out", "out/report.json"],
    "analyze-binary-with-plots": ["analyze", "junkrun", "--plots", "out"],
    "analyze-threshold-not-float": ["analyze", "goodrun", "--threshold", "abc"],
    "analyze-threshold-negative": [
        "analyze",
        "goodrun",
        "--threshold",
        "-1",
        "--json-out",
        "out.json",
    ],
    "analyze-unknown-cation": ["analyze", "goodrun", "--cation", "Zz", "--plots", "out"],
    "analyze-po2-negative": ["analyze", "goodrun", "--po2", "-5", "--json-out", "out.json"],
    # collect
    "collect-jobstore-binary": ["collect", "out", "--jobstore", "junk.bin"],
    "collect-jobstore-empty": ["collect", "out", "--jobstore", "empty.yaml"],
    "collect-jobstore-missing": ["collect", "out", "--jobstore", "missing.yaml"],
    "collect-config-binary": ["collect", "out", "--config", "junk.bin"],
    "collect-no-project": ["collect", "out", "--project-dir", "proj"],
    "collect-runs-is-a-file": ["collect", "junk.bin", "--project-dir", "proj"],
    # reproduce
    "reproduce-missing-folder": ["reproduce", "missing"],
    "reproduce-file-not-folder": ["reproduce", "junk.bin"],
    "analyze-json-file-old-spelling": ["analyze", "goodrun", "--json", "out.json"],
    "reproduce-empty-folder": ["reproduce", "emptydir", "--json-out", "out.json"],
    "reproduce-binary-runs": [
        "reproduce",
        "campaign",
        "--json-out",
        "out.json",
        "--markdown",
        "o.md",
    ],
    # demo
    "demo-supercell-not-int": ["demo", "--out", "out", "--supercell", "a", "b", "c"],
    "demo-scenario-missing": ["demo", "--out", "out", "--scenario", "missing.yaml"],
    "demo-scenario-binary": ["demo", "--out", "out", "--scenario", "junk.bin"],
    "demo-scenario-empty": ["demo", "--out", "out", "--scenario", "empty.yaml"],
    "demo-fault-malformed": ["demo", "--out", "out", "--fault", "nonsense"],
    "demo-workers-zero": ["demo", "--out", "out", "--workers", "0"],
    "launch-workers-zero": ["launch", "--project-dir", "p", "--workers", "0"],
    "launch-no-project": ["launch", "--project-dir", "p"],
    "rerun-no-project": ["rerun", "--fizzled", "--project-dir", "proj"],
    "delete-no-project": ["delete", "--yes", "--project-dir", "proj"],
    "submit-emulator-and-vasp-cmd": [
        "submit",
        "--emulator",
        "--vasp-cmd",
        "x",
        "--project-dir",
        "p",
    ],
    "submit-incar-yaml-missing": ["submit", "--incar-yaml", "missing.yaml", "--project-dir", "p"],
    "launch-workers-not-int": ["launch", "--project-dir", "p", "--workers", "two"],
    "demo-unknown-ion": ["demo", "--out", "out", "--ion", "Xx"],
    # build / sites: seeds by VASP ion number or distance, candidate enumeration (issue 14)
    "build-polarons-ion-zero": ["build", "--out", "out", "--polarons", "ion:0,ion:1"],
    "build-polarons-ion-out-of-range": ["build", "--out", "out", "--polarons", "ion:1,ion:9999"],
    "build-polarons-ion-not-int": ["build", "--out", "out", "--polarons", "ion:x,ion:1"],
    "build-polarons-ion-not-w": ["build", "--out", "out", "--polarons", "ion:1,ion:100"],
    "build-polarons-distance-no-w": ["build", "--out", "out", "--polarons", "d:3.1,d:4.6"],
    "build-polarons-distance-not-float": ["build", "--out", "out", "--polarons", "d:abc,d:6"],
    "build-polarons-repeat-w": ["build", "--out", "out", "--polarons", "ion:1,0"],
    "build-seed-tolerance-negative": ["build", "--out", "out", "--seed-tolerance", "-0.1"],
    "build-class-tolerance-negative": (
        ["build", "--out", "out", "--enumerate", "1", "--class-tolerance", "-1"]
    ),
    "build-nupdown-invalid": ["build", "--out", "out", "--enumerate", "1", "--nupdown", "1"],
    "build-nupdown-not-int": ["build", "--out", "out", "--enumerate", "1", "--nupdown", "up"],
    "build-enumerate-cavity-out-of-range": (
        ["build", "--out", "out", "--enumerate", "1", "--enumerate-cavities", "999"]
    ),
    "sites-seed-tolerance-negative": ["sites", "--json", "--seed-tolerance", "-1"],
}

#: Outputs a case may name but must never create.
OUTPUTS = ("out", "proj", "out.json", "o.md")


def _junk(n: int = 4096) -> bytes:
    return random.Random(5).randbytes(n)


def _inputs(root: Path) -> None:
    """The malformed inputs every case folder starts with."""
    from polaronflow.emulator import run_emulator
    from polaronflow.emulator.jobs import reo3_cell, scan_u_incar, write_job

    root.mkdir(parents=True)
    junk = _junk()
    (root / "junk.bin").write_bytes(junk)
    (root / "junk.cif").write_bytes(junk)
    (root / "empty.cif").write_bytes(b"")
    (root / "empty.yaml").write_bytes(b"")
    (root / "badlp.yaml").write_text(BAD_LAUNCHPAD)
    (root / "urilp.yaml").write_text(URI_LAUNCHPAD)
    for name in ("junk", "text", "emptydir", "emptyrun", "junkrun", "gzrun", "textrun", "cutgz"):
        (root / name).mkdir()
    (root / "junk" / "POSCAR").write_bytes(junk)
    (root / "text" / "POSCAR").write_text("this is not a POSCAR\n1.0\nW O\n")
    (root / "emptyrun" / "vasprun.xml").write_bytes(b"")
    (root / "emptyrun" / "OUTCAR").write_bytes(b"")
    (root / "junkrun" / "vasprun.xml").write_bytes(junk)
    (root / "junkrun" / "OUTCAR").write_bytes(junk[::-1])
    (root / "gzrun" / "vasprun.xml.gz").write_bytes(junk)
    (root / "textrun" / "vasprun.xml").write_text("<html><body>proxy error</body></html>\n")
    (root / "cutgz" / "vasprun.xml.gz").write_bytes(gzip.compress(b"<?xml" + junk)[:500])
    campaign = root / "campaign"
    for job in ("mg-static", "ref-MgO-relax", "wo3-supercell-static"):
        (campaign / job).mkdir(parents=True)
        (campaign / job / "vasprun.xml").write_bytes(junk)
        (campaign / job / "OUTCAR").write_bytes(b"")
    # one valid (emulated, synthetic) run, for malformed option values on good data
    structure = reo3_cell(2, dopant="Mg")
    magmom = [0.0] * len(structure)
    magmom[2] = magmom[5] = 1.0
    good = root / "goodrun"
    write_job(
        good,
        structure,
        scan_u_incar({"W": 8, "O": 24, "Mg": 1}, MAGMOM=magmom, NSW=0, IBRION=-1, NEDOS=301),
    )
    run_emulator(good)


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


# Runs cases one after another in one process through the console entry point
# (``polaronflow.cli.main``), each in its own folder with its own HOME and TMPDIR, with
# stdout/stderr captured at the file-descriptor level (so library output is caught too).
_RUNNER = r"""
import json, os, sys, tempfile, traceback
from polaronflow.cli import main

results = {}
for case, work, home, tmp, out, err, argv in json.load(open(sys.argv[1])):
    os.chdir(work)
    os.environ.update(HOME=home, TMPDIR=tmp)
    tempfile.tempdir = None
    sys.stdout.flush(); sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fo = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    fe = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fo, 1); os.dup2(fe, 2)
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        rc = 99
    finally:
        sys.stdout.flush(); sys.stderr.flush()
        os.dup2(saved[0], 1); os.dup2(saved[1], 2)
        os.close(fo); os.close(fe)
    results[case] = rc
print(json.dumps(results))
"""


def _prepare_case(template: Path, base: Path, case: str, argv: list[str]) -> dict:
    folder = base / case
    work, home, tmp = folder / "work", folder / "home", folder / "tmp"
    shutil.copytree(template, work, symlinks=True)
    home.mkdir()
    tmp.mkdir()
    return {
        "case": case,
        "argv": argv,
        "work": work,
        "home": home,
        "tmp": tmp,
        "out": folder / "stdout.txt",
        "err": folder / "stderr.txt",
        "before": _snapshot(work),
    }


def _run_batch(base: Path, name: str, cases: list[dict]) -> dict[str, int]:
    spec = base / f"{name}.json"
    spec.write_text(
        json.dumps(
            [
                [
                    c["case"],
                    str(c["work"]),
                    str(c["home"]),
                    str(c["tmp"]),
                    str(c["out"]),
                    str(c["err"]),
                    c["argv"],
                ]
                for c in cases
            ]
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLARONFLOW_", "FW_"))}
    env.update(
        MPLCONFIGDIR=str(base / "mpl"),  # matplotlib's cache is not ours to judge
        PYTHONWARNINGS="ignore",
        COLUMNS="120",
    )
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(spec)],
        cwd=base,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _commands() -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", "from polaronflow.cli import run; run()", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    # rows of the "Commands" panel: "│ name   description │"
    names = set()
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[0] == "│" and not parts[1].startswith("-"):
            names.add(parts[1])
    return names


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    base = tmp_path_factory.mktemp("bad_input")
    template = base / "_template"
    _inputs(template)
    available = _commands()
    cases = [
        _prepare_case(template, base, case, argv)
        for case, argv in CASES.items()
        if argv[0] in available
    ]
    # two worker processes (CI has two cores); the slow LaunchPad cases go to different ones
    cases.sort(key=lambda c: c["argv"][0] != "submit")
    batches = [cases[0::2], cases[1::2]]
    with ThreadPoolExecutor(max_workers=2) as pool:
        codes: dict[str, int] = {}
        for part in pool.map(lambda b: _run_batch(base, f"batch{id(b)}", b), batches):
            codes.update(part)
    out = {}
    for c in cases:
        out[c["case"]] = {
            "rc": codes[c["case"]],
            "stdout": c["out"].read_text(errors="replace"),
            "stderr": c["err"].read_text(errors="replace"),
            "before": c["before"],
            "after": _snapshot(c["work"]),
            "home": sorted(str(p.relative_to(c["home"])) for p in c["home"].rglob("*")),
            "tmp": sorted(str(p.relative_to(c["tmp"])) for p in c["tmp"].rglob("*")),
            "work": c["work"],
        }
    return out


def test_every_command_is_covered() -> None:
    """Each command of ``polaronflow --help`` has cases here (new commands must add some)."""
    commands = _commands()
    covered = {argv[0] for argv in CASES.values()}
    missing = commands - covered
    assert {"build", "sites", "inputs", "submit", "init", "analyze", "reproduce"} <= commands
    assert not missing, f"commands without bad-input cases: {sorted(missing)}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(results, case: str) -> None:
    if case not in results:
        pytest.skip(f"command {CASES[case][0]!r} is not available")
    _check_case(case, results[case])


def _check_case(case: str, r: dict) -> None:
    detail = f"{case}: rc={r['rc']}\nstdout={r['stdout'][-800:]!r}\nstderr={r['stderr'][-1500:]!r}"
    assert r["rc"] == 2, detail
    lines = r["stderr"].splitlines()
    assert len(lines) == 1, detail
    assert lines[0].startswith("polaronflow: error: ") and len(lines[0]) > 25, detail
    for stream in (r["stdout"], r["stderr"]):
        assert "Traceback" not in stream, detail
        assert PASSWORD not in stream and USER not in stream, detail
    # nothing written: the case folder is unchanged, no output folder, no stray temp files
    assert r["after"] == r["before"], detail
    for name in OUTPUTS:
        assert not (r["work"] / name).exists(), f"{case}: {name} was created"
    assert r["tmp"] == [], f"{case}: left {r['tmp']} in TMPDIR"
    assert r["home"] == [], f"{case}: wrote {r['home']} into HOME"
