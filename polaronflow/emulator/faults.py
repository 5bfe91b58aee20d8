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
its rerun succeeds, as a real correction would. ``truncated`` and ``delocalise`` are not
fixed by such changes.
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
FIXABLE = ("zbrent", "edddav", "unconverged")


def _parse_line(line: str, source: str) -> FaultSpec:
    parts = line.split()
    data: dict = {"kind": parts[0]}
    for token in parts[1:]:
        if "=" not in token:
            raise InputError(f"{source}: expected key=value after the fault kind, got {token!r}")
        key, value = token.split("=", 1)
        if key == "persistent":
            data[key] = value.lower() in ("1", "true", "yes", "t")
        elif key in ("below_u", "u"):
            data[key] = float(value)
        else:
            data[key] = value
    try:
        return FaultSpec.model_validate(data)
    except ValueError as exc:
        raise InputError(
            f"{source}: invalid fault {line!r}; kinds: zbrent, edddav, unconverged, "
            "truncated, delocalise"
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


ERROR_TEXT = {
    "zbrent": " ZBRENT: fatal error in bracketing\n"
    "     please rerun with smaller EDIFF, or copy CONTCAR\n"
    "     to POSCAR and continue",
    "edddav": " Error EDDDAV: Call to ZHEGV failed. Returncode =   7 2  16",
}
