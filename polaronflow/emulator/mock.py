"""Route atomate2 VASP jobs to the emulator (the machinery behind the ``mock_vasp`` fixture).

Like atomate2's own test utilities, :func:`install` monkeypatches ``run_vasp`` in the atomate2
modules that call it, and makes input sets write ``POTCAR.spec`` instead of a POTCAR (real
POTCARs are licensed and absent in tests). It needs only an object with ``setattr`` and
``undo`` (pytest's ``MonkeyPatch`` or :class:`Patcher`), so ``polaronflow demo`` uses it too::

    def test_static(mock_vasp, tmp_path):
        mock_vasp.scenario = "paper_like"          # default
        mock_vasp.fault("ramp-u9", "zbrent")       # optional: job-name substring -> fault
        responses = run_locally(flow, create_folders=True)
        assert mock_vasp.runs                       # job folders the emulator ran in

``mock_vasp.mode = "custodian"`` runs atomate2's real ``run_vasp`` (custodian with its
handlers and validators) with the emulator command as ``VASP_CMD`` instead of calling the
emulator in-process.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def emulator_command(scenario: str | Path | None = None) -> str:
    """The shell command that runs the emulator (usable as VASP_CMD)."""
    cmd = f"{shlex.quote(sys.executable)} -m polaronflow.emulator"
    if scenario is not None:
        cmd += f" --scenario {shlex.quote(str(scenario))}"
    return cmd


@dataclass
class MockVasp:
    """State and knobs of the ``mock_vasp`` fixture."""

    scenario: Any = "paper_like"
    #: "inprocess" (call the emulator directly) or "custodian" (emulator as VASP_CMD).
    mode: str = "inprocess"
    #: job folders the emulator ran in, in order.
    runs: list[Path] = field(default_factory=list)
    #: job names, parallel to ``runs``.
    job_names: list[str] = field(default_factory=list)
    _faults: list[tuple[str, str]] = field(default_factory=list)

    def fault(self, job_name_contains: str, spec: str) -> None:
        """Inject ``spec`` (e.g. ``"zbrent"``, ``"delocalise below_u=7"``) into matching jobs."""
        self._faults.append((job_name_contains, spec))

    def _prepare(self, directory: Path, job_name: str) -> None:
        specs = [spec for needle, spec in self._faults if needle in job_name]
        if specs:
            (directory / "EMULATOR_FAULT").write_text("\n".join(specs) + "\n")
        self.runs.append(directory)
        self.job_names.append(job_name)


def _current_job_name() -> str:
    try:
        from jobflow import CURRENT_JOB

        return CURRENT_JOB.job.name if CURRENT_JOB.job is not None else ""
    except Exception:  # pragma: no cover - jobflow internals
        return ""


class Patcher:
    """A minimal stand-in for pytest's ``MonkeyPatch`` (``setattr`` / ``undo``)."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def setattr(self, target: Any, name: str, value: Any) -> None:
        self._saved.append((target, name, getattr(target, name)))
        setattr(target, name, value)

    def undo(self) -> None:
        while self._saved:
            target, name, value = self._saved.pop()
            setattr(target, name, value)


def install(monkeypatch: Any, state: MockVasp) -> None:
    """Apply the patches behind ``mock_vasp`` (usable outside pytest with any MonkeyPatch)."""
    import atomate2.vasp.jobs.base
    import atomate2.vasp.run
    from pymatgen.io.vasp.sets import VaspInputSet

    from polaronflow.emulator.core import run_emulator
    from polaronflow.emulator.inputs import POTCAR_TABLE

    original_run_vasp = atomate2.vasp.run.run_vasp

    def fake_run_vasp(*args: Any, **kwargs: Any) -> None:
        directory = Path.cwd()
        state._prepare(directory, _current_job_name())
        if state.mode == "custodian":
            scenario = state.scenario
            if not isinstance(scenario, str | Path):
                path = directory / "emulator_scenario.yaml"
                import yaml

                path.write_text(yaml.safe_dump(scenario.model_dump(mode="json")))
                scenario = path
            cmd = emulator_command(scenario)
            kwargs["vasp_cmd"] = cmd
            kwargs["vasp_gamma_cmd"] = cmd
            # Custodian sleeps polling_time_step between checks; the emulator is fast.
            custodian_kwargs = dict(kwargs.get("custodian_kwargs") or {})
            custodian_kwargs.setdefault("polling_time_step", 0.2)
            # Monitors (e.g. LargeSigmaHandler) every 2 s: time for the emulator to start,
            # as custodian's defaults (every 300 s) leave a real VASP.
            custodian_kwargs.setdefault("monitor_freq", 10)
            kwargs["custodian_kwargs"] = custodian_kwargs
            original_run_vasp(*args, **kwargs)
            return
        run = run_emulator(directory, state.scenario)
        (directory / "vasp.out").write_text(run.notes[-1])

    get_input_set_orig = VaspInputSet.get_input_set

    def get_input_set(self, *args: Any, **kwargs: Any):
        kwargs["potcar_spec"] = True
        return get_input_set_orig(self, *args, **kwargs)

    def nelect(self) -> float:
        symbols = self.potcar_symbols
        zval = {s.split("_")[0]: POTCAR_TABLE.get(s, (0.0, ""))[0] for s in symbols}
        comp = self.structure.composition
        total = sum(n * zval.get(el.symbol, 0.0) for el, n in comp.items())
        return total - (self.structure.charge if self.use_structure_charge else 0)

    monkeypatch.setattr(atomate2.vasp.run, "run_vasp", fake_run_vasp)
    monkeypatch.setattr(atomate2.vasp.jobs.base, "run_vasp", fake_run_vasp)
    monkeypatch.setattr(VaspInputSet, "get_input_set", get_input_set)
    monkeypatch.setattr(VaspInputSet, "nelect", property(nelect))
