"""The custodian handler set: nothing may switch ISMEAR to tetrahedron or Methfessel-Paxton."""

from __future__ import annotations

import inspect
import re

import pytest

# every "ISMEAR": value a handler's correct() can set
_ISMEAR_SET = re.compile(r"""["']ISMEAR["']\s*:\s*(-?\d+)""")


def _ismear_values(handler_cls) -> set[int]:
    source = inspect.getsource(handler_cls.correct)
    return {int(v) for v in _ISMEAR_SET.findall(source)}


def test_chosen_handlers_only_ever_set_gaussian_smearing():
    from polaronflow.workflows.vasp.handlers import polaron_handlers

    handlers = polaron_handlers()
    assert handlers
    for h in handlers:
        assert _ismear_values(type(h)) <= {0}, f"{type(h).__name__} can change ISMEAR"


def test_excluded_handlers_are_the_smearing_switchers():
    from custodian.vasp import handlers as ch

    from polaronflow.workflows.vasp.handlers import EXCLUDED_HANDLERS, polaron_handlers

    # the check above would have caught IncorrectSmearingHandler (it sets ISMEAR = 2) ...
    assert _ismear_values(ch.IncorrectSmearingHandler) == {2}
    chosen = {type(h).__name__ for h in polaron_handlers(walltime=100)}
    assert not chosen & set(EXCLUDED_HANDLERS)
    # ... and atomate2's default set contains it, so leaving it out is a real choice
    from atomate2.vasp.run import DEFAULT_HANDLERS

    assert "IncorrectSmearingHandler" in {type(h).__name__ for h in DEFAULT_HANDLERS}


def test_handler_set_for_large_scan_u_cells():
    from polaronflow.workflows.vasp.handlers import polaron_handlers, run_vasp_kwargs

    names = [type(h).__name__ for h in polaron_handlers()]
    for needed in (
        "VaspErrorHandler",
        "UnconvergedErrorHandler",
        "NonConvergingErrorHandler",
        "PotimErrorHandler",
        "PositiveEnergyErrorHandler",
        "FrozenJobErrorHandler",
        "StdErrHandler",
    ):
        assert needed in names
    assert "WalltimeHandler" not in names
    kw = run_vasp_kwargs(walltime=7200, vasp_cmd="srun vasp_std")
    wall = [h for h in kw["handlers"] if type(h).__name__ == "WalltimeHandler"]
    assert len(wall) == 1 and wall[0].wall_time == 7200
    assert kw["vasp_cmd"] == "srun vasp_std"
    assert {type(v).__name__ for v in kw["validators"]} == {
        "VasprunXMLValidator",
        "VaspFilesValidator",
    }


@pytest.mark.parametrize("walltime", [None, 3600])
def test_handlers_serialise(walltime):
    from monty.json import MontyDecoder, jsanitize

    from polaronflow.workflows.vasp.handlers import run_vasp_kwargs

    kw = run_vasp_kwargs(walltime)
    back = MontyDecoder().process_decoded(jsanitize(kw, strict=True))
    assert [type(h).__name__ for h in back["handlers"]] == [
        type(h).__name__ for h in kw["handlers"]
    ]
