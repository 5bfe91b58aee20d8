"""``polaronflow demo``: bad options fail fast with one line; the report starts synthetic."""

from __future__ import annotations

from pathlib import Path

from polaronflow.cli import main
from polaronflow.testing.demo import SYNTHETIC_BANNER, DemoJob, DemoResult, _write_report


def test_unknown_scenario_is_a_usage_error(tmp_path: Path, capsys) -> None:
    code = main(["demo", "--out", str(tmp_path / "d"), "--scenario", "no-such-scenario"])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown scenario" in err and len(err.strip().splitlines()) == 1


def test_bad_fault_entry_is_a_usage_error(tmp_path: Path, capsys) -> None:
    code = main(["demo", "--out", str(tmp_path / "d"), "--fault", "zbrent"])
    assert code == 2
    assert "JOB_NAME_PART:FAULT" in capsys.readouterr().err


def test_report_starts_with_the_synthetic_warning(tmp_path: Path) -> None:
    result = DemoResult(
        scenario="paper_like",
        report_dir=str(tmp_path),
        settings={
            "workflow": "w",
            "launchpad": "lp",
            "parameters_file": "p",
            "fast_changes": {"kpoints.length": 8.0},
            "options": {"supercell": [2, 1, 1], "ions": ["Mg"]},
        },
        jobs=[DemoJob(name="mg-ramp-u9", state="COMPLETED", seconds=1.0)],
        seconds=2.0,
    )
    _write_report(tmp_path, result)
    first = (tmp_path / "REPORT.md").read_text().splitlines()[0]
    assert first == SYNTHETIC_BANNER.format(scenario="paper_like")
    assert '"synthetic": true' in (tmp_path / "demo.json").read_text()
    assert result.ok


def test_non_demo_folder_is_never_replaced(tmp_path: Path, capsys) -> None:
    (tmp_path / "keep.txt").write_text("precious")
    assert main(["demo", "--out", str(tmp_path), "--force"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").exists()
