"""The command line imports only the module of the command it runs (start-up time)."""

from __future__ import annotations

import subprocess
import sys

from polaronflow.cli import app, main


def _commands() -> list[str]:
    from polaronflow.cli import _command_name

    return [_command_name(c) for c in app.registered_commands]


def test_analyze_imports_no_other_command_module(corpus_dir):
    code = (
        "import sys; from polaronflow.cli import main; "
        f"rc = main(['analyze', {str(corpus_dir / 'FeO_U_relax_custodian')!r}, '--cation', 'Fe']); "
        "print(rc, sorted(m for m in sys.modules if m.startswith('polaronflow.cli.')), "
        "sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'pymatgen', 'matplotlib'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    # nor rich (its own text tables, polaronflow.cli._table), pymatgen or matplotlib
    assert out.splitlines()[-1] == "0 ['polaronflow.cli._table', 'polaronflow.cli.analyze'] []"


def test_every_command_is_listed_in_module_order_whatever_ran_first(capsys):
    assert main(["status", "--help"]) == 0  # registers "status" (maybe alone) first
    assert main(["--help"]) == 0
    capsys.readouterr()
    names = _commands()
    assert names[0] == "analyze" and {"status", "inputs", "demo", "collect"} <= set(names)
    assert names.index("status") > names.index("reproduce")
