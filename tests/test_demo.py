"""``polaronflow demo``: bad options fail fast with one line; the report starts synthetic."""

from __future__ import annotations

from pathlib import Path

from polaronflow.cli import main
from polaronflow.demo import SYNTHETIC_BANNER, DemoJob, DemoResult, _write_report


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


def test_small_demo_runs_end_to_end_in_two_workers(tmp_path: Path) -> None:
    from polaronflow.demo import run_demo

    out = tmp_path / "demo"
    result = run_demo(out=out, ions=["Mg"], supercell=(2, 1, 1), schedule=(9.0, 5.0), workers=2)
    assert result.ok, [(j.name, j.state) for j in result.jobs if j.state != "COMPLETED"]
    assert {j.worker for j in result.jobs} == {"polaronflow-demo-1", "polaronflow-demo-2"}
    # runs/<job name> links to the launch folders, gathered from the JobStore
    for name in ("wo3-unit-relax", "mg-ramp-u9", "mg-ramp-u5", "mg-static", "ref-MgO-relax"):
        link = out / "runs" / name
        assert link.is_symlink() and (link / "vasprun.xml.gz").is_file(), name
        assert link.resolve().parent == out / "launches"
    report = (out / "REPORT.md").read_text()
    assert report.splitlines()[0] == SYNTHETIC_BANNER.format(scenario="paper_like")
    assert "2 worker process(es)" in report
    assert result.analysis_summary and result.analysis_error is None
    assert result.comparison and "SYNTHETIC" in result.comparison
