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


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    global _DEBUG
    _DEBUG = _DEBUG or debug


def _register() -> None:
    # Imported for their side effect of adding commands to ``app``.
    import importlib
    import pkgutil

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def _fail(message: str, code: int = 2) -> int:
    first = " ".join(str(message).split())
    sys.stderr.write(f"polaronflow: error: {first}\n")
    return code


def _exception_classes(name: str) -> tuple[type[BaseException], ...]:
    """``name`` from click and from typer's vendored click (typer >= 0.20 ships its own)."""
    import importlib

    found: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and cls not in found:
            found.append(cls)
    return tuple(found)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``polaronflow`` console script; returns the exit status."""
    from polaronflow.errors import PolaronflowError

    global _DEBUG
    args = list(sys.argv[1:] if argv is None else argv)
    _DEBUG = "--debug" in args
    _register()
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
        # Unexpected but user-facing (unreadable file, bad value deep in a library).
        if _DEBUG:
            raise
        return _fail(f"{type(exc).__name__}: {exc}", 2)
    return int(result) if isinstance(result, int) else 0


def run() -> None:  # pragma: no cover - thin wrapper
    sys.exit(main())
