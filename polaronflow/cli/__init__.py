"""The ``polaronflow`` command line: thin wrappers that call the library.

Every command lives in a module of this package and is registered on :data:`app` below.
Command modules import heavy libraries (pymatgen, atomate2, FireWorks) inside the command
function, never at module level, so ``polaronflow analyze`` starts fast.

Errors: a :class:`polaronflow.errors.PolaronflowError` or a usage error is printed on one line
to stderr and the process exits with status 2 (no traceback unless ``--debug``).
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    name="polaronflow",
    help="Build, submit, analyse and reproduce SCAN+U polaron campaigns in intercalated WO3.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_DEBUG = False
#: Set by a command (``inputs``) whose work is complete and on disk when it returns: the console
#: script (:func:`run`) then ends without the interpreter's teardown. Reset by every ``main()``.
_SKIP_TEARDOWN = False


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    global _DEBUG
    _DEBUG = _DEBUG or debug


def _command_name(info: typer.models.CommandInfo) -> str:
    return info.name or info.callback.__name__.lower().replace("_", "-")  # typer's default


def _register(command: str | None = None) -> None:
    """Import the command modules, which add their commands to ``app``.

    With ``command`` (the first word of the command line), only the module of that name when
    it defines that command: ``polaronflow analyze`` neither imports nor converts the other
    commands (typer turns every registered command into a click command on each call).
    Otherwise all of them, listed in module order whatever was imported first.
    """
    import importlib
    import pkgutil

    if command and command.isidentifier() and not command.startswith("_"):
        module = f"{__name__}.{command}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
        else:
            if any(_command_name(c) == command for c in app.registered_commands):
                return
    names = [m.name for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)]
    for name in names:
        if not name.startswith("_"):
            importlib.import_module(f"{__name__}.{name}")
    order = {f"{__name__}.{name}": i for i, name in enumerate(names)}
    app.registered_commands.sort(key=lambda c: order.get(c.callback.__module__, len(order)))


def skip_teardown() -> None:
    """Let the console script end without the interpreter's teardown after this command.

    Only :func:`run` (the ``polaronflow`` console script and ``python -m polaronflow``) acts on
    it, and only on success; ``main()`` called from Python (tests) returns as usual. Call it
    only once the command's files are written and closed and its output printed.
    """
    global _SKIP_TEARDOWN
    _SKIP_TEARDOWN = True


def _exit_without_teardown(code: int) -> None:
    """``os._exit(code)`` after flushing stdout/stderr and running the atexit handlers.

    Freeing the interpreter's state (every module, pymatgen's and scipy's objects) took 0.2-0.4 s
    after ``polaronflow inputs`` had finished; the operating system reclaims it at once. Returns
    (normal exit follows) when that is not safe: another thread still runs, or a stream cannot
    be flushed (e.g. a closed pipe, which the normal exit reports).
    """
    import atexit
    import os
    import threading

    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if run_exitfuncs is None or threading.active_count() > 1 or not _flush_std_streams():
        return
    run_exitfuncs()  # logging.shutdown, coverage, ... (and then they are unregistered)
    _flush_std_streams()
    os._exit(code)


def _flush_std_streams() -> bool:
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return False
    return True


def _fail(message: str, code: int = 2) -> int:
    first = " ".join(str(message).split())
    sys.stderr.write(f"polaronflow: error: {first}\n")
    return code


def _exception_classes(name: str) -> tuple[type[BaseException], ...]:
    """``name`` from click and from typer's vendored click (typer >= 0.20 ships its own)."""
    import importlib

    found: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
        if module.startswith("click") and "click" not in sys.modules:
            continue  # typer vendors its own: plain click raises nothing unless imported
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and cls not in found:
            found.append(cls)
    return tuple(found)


#: Options taking three integers: given as ``2 2 2`` or, as their help shows, ``2,2,2``.
_TRIPLES = ("--supercell",)


def _split_triples(args: list[str]) -> list[str]:
    """``--supercell 2,2,2`` (or ``--supercell=2,2,2``) → ``--supercell 2 2 2``."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name in _TRIPLES and eq and "," in value:
            out += [name, *value.split(",")]
        elif arg in _TRIPLES and i + 1 < len(args) and "," in args[i + 1]:
            out += [arg, *args[i + 1].split(",")]
            i += 1
        else:
            out.append(arg)
        i += 1
    return out


#: Libraries whose exceptions mean "the store cannot be used", not a polaronflow bug.
_STORE_MODULES = ("pymongo", "bson", "sqlite3", "montydb", "maggma", "mongomock", "gridfs")


def _scrubbed(exc: BaseException) -> str:
    """``Type: message`` without credentials and without pymongo's topology dump."""
    from polaronflow.workflows.runtime.secrets import redact

    detail = str(exc).split(", Topology Desc")[0]
    return redact(f"{type(exc).__name__}: {detail}", [])


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``polaronflow`` console script; returns the exit status."""
    from polaronflow.errors import PolaronflowError

    global _DEBUG, _SKIP_TEARDOWN
    args = list(sys.argv[1:] if argv is None else argv)
    # --debug anywhere on the line (before a "--"): taken out here, so every command has it
    end = args.index("--") if "--" in args else len(args)
    _DEBUG = "--debug" in args[:end]
    args = _split_triples([a for a in args[:end] if a != "--debug"]) + args[end:]
    _SKIP_TEARDOWN = False
    if not _DEBUG:
        import warnings

        # Libraries' deprecation notices (jobflow, maggma, pymatgen) are for developers, not
        # for the terminal of someone running a campaign; --debug shows them.
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
    command = args[0] if args and not args[0].startswith("-") else None
    if command == "analyze":
        import os

        # pydantic looks through every installed distribution's entry points for plugins when
        # the first model is built (~15 ms of analyze's ~0.35 s); the report needs none. Its
        # documented switch; a value the user exported wins.
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
        # numpy is not imported yet: one OpenBLAS thread, not one per core started at import
        # (analyze does no large linear algebra; ~15 ms of wall time on 2 cores)
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _register(command)
    no_args_help = _exception_classes("NoArgsIsHelpError")
    usage_error = _exception_classes("UsageError")
    exit_exc = _exception_classes("Exit")
    abort_exc = _exception_classes("Abort")
    try:
        result = app(args=args, prog_name="polaronflow", standalone_mode=False)
    except no_args_help as exc:
        sys.stdout.write(exc.format_message() + "\n")
        return 0
    except usage_error as exc:
        if _DEBUG:
            raise
        ctx = getattr(exc, "ctx", None)
        path = ctx.command_path if ctx is not None else "polaronflow"
        return _fail(f"{exc.format_message()} (see '{path} --help')", 2)
    except exit_exc as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except abort_exc:
        return _fail("aborted", 130)
    except PolaronflowError as exc:
        if _DEBUG:
            raise
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except (OSError, ValueError) as exc:
        # Unexpected but user-facing (unreadable file, a full disk, bad value deep in a library).
        if _DEBUG:
            raise
        return _fail(_scrubbed(exc), 2)
    except Exception as exc:
        # A store that cannot be read (a corrupt embedded JobStore, an unreachable MongoDB):
        # one line, never a traceback, never credentials. Anything else is a bug: traceback.
        if _DEBUG or type(exc).__module__.split(".")[0] not in _STORE_MODULES:
            raise
        return _fail(_scrubbed(exc), 2)
    return int(result) if isinstance(result, int) else 0


def run() -> None:  # pragma: no cover - thin wrapper
    """The console script: ``main()`` on ``sys.argv``, then exit with its status."""
    code = main()
    if code == 0 and _SKIP_TEARDOWN:
        _exit_without_teardown(code)
    sys.exit(code)
