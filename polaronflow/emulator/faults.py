"""Fault injection: which failures apply to a job, and when a correction has "fixed" one.

Faults come from three places, all combined:

* the scenario's ``faults`` list (filtered by system and U);
* a file ``EMULATOR_FAULT`` in the job folder: one fault per line, ``kind`` or
  ``kind key=value ...`` (keys: ``below_u``, ``persistent``), e.g. ``zbrent`` or
  ``delocalise below_u=7``;
* the environment variable ``POLARONFLOW_EMULATOR_FAULT``: comma-separated kinds.

A fixable fault (``zbrent``, ``edddav``, ``unconverged``) is injected only while INCAR and
POSCAR are the ones the fault first saw; the fingerprint is kept in ``.emulator_faults.json``
in the job folder. Custodian's corrections change the INCAR or copy CONTCAR over POSCAR, so
its rerun succeeds, as a real correction would; a correction that changes neither (custodian
has nothing left to try) meets the same failure again, as VASP would. ``kill``,
``truncated`` and ``delocalise`` are not fixed by such changes.

The fatal faults (:data:`FATAL`) stop the run where VASP would stop: the message in stdout
(and OUTCAR), the files cut at that point (see :func:`death_point`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from polaronflow.emulator.scenario import FaultSpec, Scenario
from polaronflow.errors import InputError

FAULT_FILE = "EMULATOR_FAULT"
FAULT_ENV = "POLARONFLOW_EMULATOR_FAULT"
STATE_FILE = ".emulator_faults.json"
FIXABLE = (
    "zbrent",
    "edddav",
    "unconverged",
    "grad_not_orth",
    "zheev",
    "brmix",
    "too_few_bands",
)
#: Faults that stop VASP inside its SCF or ionic loop (the outputs are cut there).
FATAL = ("zbrent", "edddav", "grad_not_orth", "zheev", "brmix", "too_few_bands", "kill")


def _parse_line(line: str, source: str) -> FaultSpec:
    parts = line.split()
    # "truncate" is accepted for "truncated"
    data: dict = {"kind": {"truncate": "truncated"}.get(parts[0], parts[0])}
    for token in parts[1:]:
        if "=" not in token:
            raise InputError(f"{source}: expected key=value after the fault kind, got {token!r}")
        key, value = token.split("=", 1)
        if key == "persistent":
            data[key] = value.lower() in ("1", "true", "yes", "t")
        elif key in ("below_u", "u"):
            data[key] = float(value)
        elif key in ("ionic_step", "scf_step"):
            data[key] = int(value)
        else:
            data[key] = value
    try:
        return FaultSpec.model_validate(data)
    except ValueError as exc:
        raise InputError(
            f"{source}: invalid fault {line!r}; kinds: zbrent, edddav, grad_not_orth, zheev, "
            "brmix, too_few_bands, kill, unconverged, truncated, delocalise"
        ) from exc


def requested_faults(directory: Path, scenario: Scenario, system: str, u: float) -> list[FaultSpec]:
    """Faults that apply to this job before the fixed-by-correction check."""
    faults = []
    for spec in scenario.faults:
        if spec.system is not None and spec.system != system:
            continue
        if spec.u is not None and abs(spec.u - u) > 1e-6:
            continue
        faults.append(spec)
    path = directory / FAULT_FILE
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                faults.append(_parse_line(line.strip(), str(path)))
    env = os.environ.get(FAULT_ENV, "")
    for kind in filter(None, (k.strip() for k in env.split(","))):
        faults.append(_parse_line(kind, FAULT_ENV))
    return faults


def _inputs_fingerprint(directory: Path) -> str:
    # INCAR tags (order-insensitive) and the POSCAR text: custodian's corrections change one
    # or the other (new settings, or CONTCAR copied over POSCAR).
    text = (directory / "INCAR").read_text()
    norm = "\n".join(sorted(" ".join(line.split()) for line in text.splitlines() if line.strip()))
    norm += "\n" + (directory / "POSCAR").read_text()
    return hashlib.sha256(norm.encode()).hexdigest()[:16]


def active_faults(directory: Path, faults: list[FaultSpec]) -> list[FaultSpec]:
    """Drop fixable faults whose inputs changed since they first fired; record new ones."""
    state_path = directory / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    current = _inputs_fingerprint(directory)
    active = []
    for spec in faults:
        if spec.kind in FIXABLE and not spec.persistent:
            first = state.setdefault(spec.kind, current)
            if first != current:
                continue
        active.append(spec)
    state_path.write_text(json.dumps(state))
    return active


def _banner(*lines: str) -> str:
    """VASP 6's error/warning box (custodian matches the text inside it)."""
    rule = " " + "-" * 77
    body = [" |" + " " * 77 + "|"] + [f" |     {ln:<72s}|" for ln in lines]
    return "\n".join([rule, *body, " |" + " " * 77 + "|", rule])


ERROR_TEXT = {
    "zbrent": " ZBRENT: fatal error in bracketing\n"
    "     please rerun with smaller EDIFF, or copy CONTCAR\n"
    "     to POSCAR and continue",
    "edddav": " Error EDDDAV: Call to ZHEGV failed. Returncode =   7 2  16",
    "grad_not_orth": " EDWAV: internal error, the gradient is not orthogonal\n"
    "           2           1  -4.534E-03",
    "zheev": _banner(
        "EEEEEEE  RRRRRR   RRRRRR   OOOOOOO  RRRRRR      ###     ###     ###",
        "",
        "ERROR EDDIAG: Call to routine ZHEEV failed! Error code was   123",
        "If you use ALGO = Normal, try ALGO = All or Exact.",
    ),
    "brmix": " BRMIX: very serious problems\n the old and the new charge density differ\n"
    " old charge density:   767.99931 new  767.47289",
    "too_few_bands": _banner(
        "W    W    AA    RRRRR   N    N  II  N    N   GGGG   !!!",
        "",
        "Your highest band is occupied at some k-points! Unless you are",
        "performing a calculation for an insulator or semiconductor, without",
        "unoccupied bands, you have TOO FEW BANDS! Please increase the parameter",
        "NBANDS in file INCAR to ensure that the highest band is unoccupied at",
        "all k-points.",
    ),
    "kill": "",
}


def death_point(kind: str, nsteps: int, scf_counts: list[int], relax: bool, rng, spec=None):
    """(ionic step index, SCF steps done in it) where a fatal fault stops the run.

    ``zbrent`` happens in the ionic line search: after the second ionic step of a relaxation.
    ``edddav``, ``brmix`` and ``kill`` strike at a random SCF step (a relaxation's EDDDAV not
    in its first ionic step, so a CONTCAR exists, as custodian's correction expects);
    ``grad_not_orth`` and ``zheev`` in the first SCF steps; ``too_few_bands`` when the first
    occupations are computed. ``spec.ionic_step``/``spec.scf_step`` (1-based) override.
    None: the fault does not apply (a ZBRENT in a single-point run).
    """
    last = nsteps - 1
    if kind == "zbrent":
        if not relax or nsteps < 2:
            return None
        point = (min(2, last), 0) if nsteps > 2 else (last, max(scf_counts[last] - 1, 1))
    elif kind == "edddav":
        i = int(rng.integers(1, nsteps)) if (relax and nsteps > 1) else 0
        point = (i, int(rng.integers(2, max(scf_counts[i], 3))))
    elif kind in ("grad_not_orth", "zheev"):
        point = (0, int(rng.integers(1, 4)))
    elif kind == "brmix":
        i = int(rng.integers(0, nsteps))
        point = (i, int(rng.integers(3, max(scf_counts[i], 4))))
    elif kind == "too_few_bands":
        point = (0, 3)
    else:  # kill: anywhere in the SCF or ionic loop
        i = int(rng.integers(0, nsteps))
        point = (i, int(rng.integers(0, scf_counts[i])))
    if spec is not None and getattr(spec, "ionic_step", None):
        point = (min(spec.ionic_step - 1, last), point[1])
    if spec is not None and getattr(spec, "scf_step", None):
        point = (point[0], spec.scf_step)
    i, j = point
    return i, max(0, min(j, scf_counts[i] - 1))
