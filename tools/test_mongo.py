"""Run a command with a throw-away MongoDB-wire server (SecantusDB) on 127.0.0.1.

Test-only tool: SecantusDB (GPL, beta) lives in its own virtual environment (``.venv-mongo``,
made by ``make``) and runs as a separate process; polaronflow never imports it.  The command
gets two environment variables:

``POLARONFLOW_TEST_MONGO_URI``
    ``mongodb://127.0.0.1:PORT/`` of the running server (tests skip without it).
``POLARONFLOW_SECANTUSD``
    the server executable, for tests that start/stop servers of their own.

Usage: ``python tools/test_mongo.py [--server PATH] -- COMMAND ...``.  When the server
executable is missing the command runs without the variables (and the MongoDB tests skip,
saying why).  The exit status is the command's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def start_server(executable: str, storage: Path, port: int | None = None):
    """Start SecantusDB; returns (process, port). Raises RuntimeError if it does not come up."""
    port = port or free_port()
    log = open(storage.parent / f"secantusd-{port}.log", "ab")
    proc = subprocess.Popen(
        [
            executable,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            str(storage),
            "--log-level",
            "WARNING",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    if not wait_for_port(port, proc=proc):
        proc.kill()
        raise RuntimeError(f"SecantusDB did not start on port {port} (log: {log.name})")
    return proc, port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=str(Path(".venv-mongo/bin/secantusd-py")))
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command after --")
    env = dict(os.environ)
    server = shutil.which(args.server) or (args.server if os.access(args.server, os.X_OK) else None)
    if server is None:
        print(
            f"tools/test_mongo.py: no SecantusDB at {args.server}; MongoDB tests will skip",
            file=sys.stderr,
        )
        return subprocess.call(command, env=env)
    workdir = Path(tempfile.mkdtemp(prefix="pf-mongo-"))
    proc, port = start_server(os.path.abspath(server), workdir / "data")
    env["POLARONFLOW_TEST_MONGO_URI"] = f"mongodb://127.0.0.1:{port}/"
    env["POLARONFLOW_SECANTUSD"] = os.path.abspath(server)
    print(f"tools/test_mongo.py: SecantusDB on 127.0.0.1:{port}", file=sys.stderr)
    try:
        return subprocess.call(command, env=env)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
