"""Benchmark: ``polaronflow analyze`` against pymatgen on a 257-atom LORBIT=11 ISPIN=2 run.

Writes the run with the mock-VASP emulator (``write_large_run``: ~420 MB vasprun.xml plus its
OUTCAR), makes a gzipped copy, then measures, side by side in one invocation and each as a
whole child process (interpreter start-up and imports included):

* ``polaronflow analyze DIR``          (issue 16: ≤ 0.35 s and ≥ 25x pymatgen; gz ≤ 1.0 s),
  its output discarded, and again "on a terminal": stdout and stderr a 200-column
  pseudo-terminal, as when a user types it (the styled table, the "reading" line)
* ``read_run(DIR)`` alone                (the readers' share of it)
* pymatgen ``Vasprun(vasprun.xml)`` + ``Outcar(OUTCAR)`` with the defaults a user would use
* ``read_run(DIR, pdos=True)``            (what ``--plots`` adds: the full projected DOS)
* ``python -c "import numpy"``           (the floor any numpy tool pays)
* ``polaronflow --help``
* ``polaronflow analyze RUNS/*`` on a whole collected campaign (issue 16: ≤ 5 s): the
  ``runs/`` folder of ``polaronflow demo`` (written into the work folder on first use, a few
  minutes; ``--campaign DIR`` takes another collected ``runs/`` folder)

Wall time is measured around the child; peak RSS is the child's own ``ru_maxrss`` from
``os.wait4`` (it counts the pages of the memory-mapped vasprun.xml that were looked at).
Files are read with a warm page cache (each command runs once unmeasured first), as when
analysing right after a job finished.

Usage::

    .venv/bin/python benchmarks/bench_analyze.py                 # print the table
    .venv/bin/python benchmarks/bench_analyze.py --record        # ... and update RESULTS.md
    .venv/bin/python benchmarks/bench_analyze.py --workdir /tmp/bench --repeat 5

The runs are synthetic (emulator output, labelled POLARONFLOW-SYNTHETIC); only their size and
layout matter here.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gzip
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import bytecode_note, cpu_name, record_section

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
START, END = "<!-- bench_analyze:start -->", "<!-- bench_analyze:end -->"

#: Targets from issue 16: plain run (s, x pymatgen), gzipped run (s), campaign (s).
TARGET_PLAIN = (0.35, 25.0)
TARGET_GZ_S = 1.0
TARGET_CAMPAIGN_S = 5.0

PYMATGEN_SNIPPET = (
    "import sys, warnings; warnings.simplefilter('ignore');"
    "from pymatgen.io.vasp import Vasprun, Outcar;"
    "v = Vasprun(sys.argv[1]); o = Outcar(sys.argv[2]);"
    "print(v.final_energy, v.efermi, len(o.magnetization))"
)
PDOS_SNIPPET = (
    "import sys; from polaronflow.analysis.readers import read_run;"
    "r = read_run(sys.argv[1], pdos=True); print(r.pdos.shape)"
)
READER_SNIPPET = (
    "import sys; from polaronflow.analysis.readers import read_run;"
    "r = read_run(sys.argv[1]); print(r.final_energy, r.efermi, r.nsites)"
)


def child_env(workdir: Path) -> dict[str, str]:
    """Environment of the measured children: byte-code caching on, as in an installed package.

    Sessions and CI may set PYTHONDONTWRITEBYTECODE, which makes every child recompile the
    package's modules from source (tens of ms); a pip-installed package has its .pyc files.
    The caches go under ``workdir`` (PYTHONPYCACHEPREFIX), never into the source tree.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return env


#: Width of the pseudo-terminal of the "on a terminal" row (a wide window: the table fits).
TTY_COLUMNS = 200
TERMINAL = " on a terminal"


def measure(
    cmd: list[str], env: dict[str, str] | None = None, tty: bool = False
) -> tuple[float, float, int, float]:
    """Run ``cmd`` as a child; return (wall seconds, peak RSS in MB, exit status, CPU seconds).

    CPU = the child's user + system time: what it cost, less sensitive than wall time to
    other processes on a shared machine (but not immune: they share caches and cores).
    With ``tty`` the child's stdout and stderr are a pseudo-terminal ``TTY_COLUMNS`` wide,
    read by a thread of this process, as when a user types the command.
    """
    if tty:
        return _measure_tty(cmd, env)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        sys.stderr.write(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err}\n")
    cpu = usage.ru_utime + usage.ru_stime
    return wall, usage.ru_maxrss / 1024.0, proc.returncode, cpu  # ru_maxrss: kB on Linux


def _measure_tty(cmd: list[str], env: dict[str, str] | None) -> tuple[float, float, int, float]:
    import fcntl
    import pty
    import struct
    import termios
    import threading

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, TTY_COLUMNS, 0, 0))
    shown = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO once the child has closed the terminal
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    reader.join(10)
    os.close(master)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.stderr.write(f"command failed ({code}): {' '.join(cmd)}\n{shown.decode()}\n")
    return wall, usage.ru_maxrss / 1024.0, code, usage.ru_utime + usage.ru_stime


def prepare(workdir: Path) -> tuple[Path, Path]:
    """The plain run folder (written by the emulator if absent) and a gzipped copy."""
    plain, gz = workdir / "plain", workdir / "gz"
    if not (plain / "vasprun.xml").is_file():
        from polaronflow.emulator import write_large_run

        print(f"writing the 257-atom run with the emulator into {plain} ...", flush=True)
        write_large_run(plain, natoms=257, nbands=1200, nedos=3001, nkpts=4)
    if not (gz / "vasprun.xml.gz").is_file():
        gz.mkdir(parents=True, exist_ok=True)
        print(f"gzipping it into {gz} ...", flush=True)
        for f in plain.iterdir():
            if f.name in ("vasprun.xml", "OUTCAR"):
                with open(f, "rb") as fin, gzip.open(gz / (f.name + ".gz"), "wb", 6) as fout:
                    shutil.copyfileobj(fin, fout, 16 << 20)
            elif f.is_file():
                shutil.copy(f, gz / f.name)
    return plain, gz


def prepare_campaign(workdir: Path, campaign: Path | None) -> list[Path]:
    """The run folders of a collected campaign: ``campaign`` (a ``runs/`` folder), else the
    ``runs/`` of ``polaronflow demo`` in ``workdir/demo`` (run once, a few minutes)."""
    runs = campaign or workdir / "demo" / "runs"
    if campaign is None and not runs.is_dir():
        print(f"running polaronflow demo into {runs.parent} (once) ...", flush=True)
        cmd = [*_polaronflow_cmd(), "demo", "--out", str(runs.parent), "--force"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    folders = sorted(p for p in runs.iterdir() if p.is_dir())
    if not folders:
        raise SystemExit(f"{runs}: no run folders")
    return folders


def _pyc_cached(workdir: Path, module: str) -> str:
    """Whether the children's byte-code cache (PYTHONPYCACHEPREFIX) holds ``module``."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return "n/a"
    src = Path(spec.origin).resolve()
    tag = sys.implementation.cache_tag
    pyc = workdir / "pycache" / src.parent.relative_to("/") / f"{src.stem}.{tag}.pyc"
    return "yes" if pyc.is_file() else "no"


def _polaronflow_cmd() -> list[str]:
    script = Path(sys.executable).with_name("polaronflow")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "polaronflow"]


def run(
    workdir: Path, repeat: int, pmg_repeat: int, campaign: Path | None, with_campaign: bool
) -> list[dict]:
    plain, gz = prepare(workdir)
    folders = prepare_campaign(workdir, campaign) if with_campaign else []
    py = sys.executable
    env = child_env(workdir)
    cases = []
    for label, folder in (("plain", plain), ("gzip", gz)):
        vr = next(folder.glob("vasprun.xml*"))
        out = next(folder.glob("OUTCAR*"))
        sizes = {"vasprun_mb": vr.stat().st_size / 1e6, "outcar_mb": out.stat().st_size / 1e6}
        cases += [
            (label, "polaronflow analyze", [*_polaronflow_cmd(), "analyze", str(folder)], sizes),
            (
                label,
                "polaronflow analyze" + TERMINAL,
                [*_polaronflow_cmd(), "analyze", str(folder)],
                sizes,
            ),
            (label, "read_run only", [py, "-c", READER_SNIPPET, str(folder)], sizes),
            (label, "read_run(pdos=True)", [py, "-c", PDOS_SNIPPET, str(folder)], sizes),
            (
                label,
                "pymatgen Vasprun+Outcar",
                [py, "-c", PYMATGEN_SNIPPET, str(vr), str(out)],
                sizes,
            ),
        ]
    cases.append(("-", "baseline: python + numpy", [py, "-c", "import numpy"], {}))
    cases.append(("-", "polaronflow --help", [*_polaronflow_cmd(), "--help"], {}))
    if folders:
        cmd = [*_polaronflow_cmd(), "analyze", *map(str, folders)]
        size = sum(f.stat().st_size for d in folders for f in d.iterdir() if f.is_file())
        what = f"polaronflow analyze RUNS/* ({len(folders)} runs)"
        cases.append(("campaign", what, cmd, {"campaign_mb": size / 1e6, "nruns": len(folders)}))
    for case in cases:
        measure(case[2], env, case[1].endswith(TERMINAL))  # warm the caches, write the .pyc
    # Rounds interleave the commands so that load from other processes on a shared machine
    # spreads over all of them instead of biasing one.
    samples: dict[int, list[tuple[float, float, int, float]]] = {i: [] for i in range(len(cases))}
    for rnd in range(repeat):
        for i, (_, what, cmd, _) in enumerate(cases):
            if what.startswith(("pymatgen", "read_run(pdos")) and rnd >= pmg_repeat:
                continue
            samples[i].append(measure(cmd, env, what.endswith(TERMINAL)))
        print(f"round {rnd + 1}/{repeat} done", flush=True)
    rows = []
    byte_code = (
        f"children: PYTHONDONTWRITEBYTECODE unset, PYTHONPYCACHEPREFIX={workdir / 'pycache'} "
        "(written by the unmeasured first run); .pyc cached there for polaronflow "
        f"(polaronflow.cli.analyze): {_pyc_cached(workdir, 'polaronflow.cli.analyze')}, "
        f"for site-packages (typer.main): {_pyc_cached(workdir, 'typer.main')}; "
        f"this script's own process: {bytecode_note()}"
    )
    for i, (label, what, _, sizes) in enumerate(cases):
        walls = [s[0] for s in samples[i]]
        rows.append(
            {
                "files": label,
                "what": what,
                "wall_median": statistics.median(walls),
                "wall_min": min(walls),
                "cpu_median": statistics.median(s[3] for s in samples[i]),
                "rss_max": max(s[1] for s in samples[i]),
                "n": len(walls),
                "ok": all(s[2] == 0 for s in samples[i]),
                "byte_code": byte_code,
                **sizes,
            }
        )
        r = rows[-1]
        print(
            f"{label:8s}  {what:26s} {r['wall_median']:7.2f} s (min {r['wall_min']:.2f}, "
            f"CPU {r['cpu_median']:.2f}, "
            f"n={r['n']})  {r['rss_max']:7.0f} MB  {'ok' if r['ok'] else 'FAILED'}",
            flush=True,
        )
    return rows


def _machine() -> str:
    cpu = cpu_name()
    try:
        import isal  # noqa: F401

        inflate = "isal"
    except ImportError:
        inflate = "zlib"
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, gzip inflate via {inflate}"
    )


def render(rows: list[dict]) -> str:
    from polaronflow.analysis.rundata import SYNTHETIC_MARKER

    def get(files: str, what: str) -> dict:
        return next(r for r in rows if r["files"] == files and r["what"] == what)

    when = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    p0 = rows[0]
    lines = [
        START,
        "## `polaronflow analyze` vs pymatgen on a 257-atom LORBIT=11 ISPIN=2 run",
        "",
        f"Recorded {when} by `benchmarks/bench_analyze.py` on {_machine()}; load average "
        f"{os.getloadavg()[0]:.1f} at the end (other work on the machine inflates medians).",
        f"Files (synthetic: marked {SYNTHETIC_MARKER}) from the emulator's "
        "`write_large_run(natoms=257, nbands=1200, nedos=3001, nkpts=4)`: "
        f"vasprun.xml {p0['vasprun_mb']:.0f} MB, OUTCAR {p0['outcar_mb']:.1f} MB "
        f"(gzipped: {get('gzip', 'read_run only')['vasprun_mb']:.0f} MB). Whole child "
        "processes, warm page cache; wall = median of n runs, the commands interleaved "
        "round by round; CPU = median user + system time of the child; RSS = peak of the "
        "child (it includes the pages of the "
        "memory-mapped vasprun.xml that were read).",
        "",
        "| files | command | wall (s) | min (s) | CPU (s) | peak RSS (MB) | n |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['files']} | {r['what']} | {r['wall_median']:.2f} | {r['wall_min']:.2f} | "
            f"{r['cpu_median']:.2f} | {r['rss_max']:.0f} | {r['n']} |"
        )
    lines.append("")
    lines.append(f"- {rows[0]['byte_code']}")
    for files in ("plain", "gzip"):
        ours, ref = get(files, "polaronflow analyze"), get(files, "pymatgen Vasprun+Outcar")
        tty = get(files, "polaronflow analyze" + TERMINAL)
        lines.append(
            f"- {files}: pymatgen / `polaronflow analyze` = "
            f"{ref['wall_median'] / ours['wall_median']:.1f}x wall time, "
            f"{ref['cpu_median'] / ours['cpu_median']:.1f}x CPU time, "
            f"{ref['rss_max'] / ours['rss_max']:.1f}x memory (this run's medians); on a "
            f"terminal {ref['wall_median'] / tty['wall_median']:.1f}x wall time"
        )
    ours_p, ours_g = get("plain", "polaronflow analyze"), get("gzip", "polaronflow analyze")
    ratio = get("plain", "pymatgen Vasprun+Outcar")["wall_median"] / ours_p["wall_median"]
    tty_p = get("plain", "polaronflow analyze" + TERMINAL)
    ratio_tty = get("plain", "pymatgen Vasprun+Outcar")["wall_median"] / tty_p["wall_median"]
    ok_p = ours_p["wall_median"] <= TARGET_PLAIN[0] and ratio >= TARGET_PLAIN[1]
    ok_tty = tty_p["wall_median"] <= TARGET_PLAIN[0] and ratio_tty >= TARGET_PLAIN[1]
    ok_g = ours_g["wall_median"] <= TARGET_GZ_S
    lines.append(
        f"- target plain ≤ {TARGET_PLAIN[0]} s and ≥ {TARGET_PLAIN[1]:.0f}x pymatgen "
        f"({ours_p['wall_median']:.2f} s, {ratio:.1f}x): {'met' if ok_p else 'NOT met'}, "
        f"on a terminal ({tty_p['wall_median']:.2f} s, {ratio_tty:.1f}x): "
        f"{'met' if ok_tty else 'NOT met'}; "
        f"target gzip ≤ {TARGET_GZ_S} s ({ours_g['wall_median']:.2f} s): "
        f"{'met' if ok_g else 'NOT met'}"
    )
    camp = [r for r in rows if r["files"] == "campaign"]
    if camp:
        c = camp[0]
        lines.append(
            f"- campaign: the `runs/` of `polaronflow demo` ({c['nruns']} run folders, "
            f"{c['campaign_mb']:.0f} MB, synthetic), target ≤ {TARGET_CAMPAIGN_S:g} s "
            f"({c['wall_median']:.2f} s): "
            f"{'met' if c['wall_median'] <= TARGET_CAMPAIGN_S else 'NOT met'}"
        )
    lines.append(END)
    return "\n".join(lines) + "\n"


def record(section: str) -> None:
    """Replace this benchmark's section of RESULTS.md (other sections are left alone)."""
    record_section(START, END, section)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--workdir", type=Path, help="Keep the generated run here (reused if present).")
    ap.add_argument("--repeat", type=int, default=5, help="Measured runs of our commands.")
    ap.add_argument("--pmg-repeat", type=int, default=1, help="Measured runs of pymatgen.")
    ap.add_argument("--record", action="store_true", help="Update benchmarks/RESULTS.md.")
    ap.add_argument(
        "--campaign", type=Path, help="A collected runs/ folder (default: polaronflow demo's)."
    )
    ap.add_argument("--no-campaign", action="store_true", help="Skip the campaign row.")
    args = ap.parse_args(argv)
    extra = (args.campaign, not args.no_campaign)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        rows = run(args.workdir, args.repeat, args.pmg_repeat, *extra)
    else:
        with tempfile.TemporaryDirectory(prefix="polaronflow-bench-") as tmp:
            rows = run(Path(tmp), args.repeat, args.pmg_repeat, *extra)
    section = render(rows)
    print()
    print(section)
    if args.record:
        record(section)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
