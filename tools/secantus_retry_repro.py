"""Minimal reproduction: SecantusDB forgets executed retryable writes when it restarts.

A driver that loses the reply to a write (the server went away mid-request) sends it again,
once, with the same session id and ``txnNumber``. mongod keeps a record of executed
retryable writes and answers such a retry with the stored result; SecantusDB 0.7.0b3 keeps
that record in memory only, so after a restart it runs the retried write a second time.
Its stop also shuts the client sockets before the requests in progress finish (``stop`` in
its ``server.py``): a write in progress commits, its reply is lost, and pymongo retries it
against the restarted server.

Run: ``python tools/secantus_retry_repro.py .venv-mongo/bin/secantusd-py``. Output with
0.7.0b3 (the last line is the bug: the retry claims a second document)::

    server type seen by pymongo: RSPrimary; txnNumber on an insert: True
    attempt 1           -> {'_id': 1, 'state': 'READY'}
    retry, same server  -> {'_id': 1, 'state': 'READY'}   (replayed, as mongod does)
    retry after restart -> {'_id': 2, 'state': 'READY'}   (run again)

With ``--standalone`` the server is a standalone to drivers and pymongo sends no
``txnNumber`` (no retryable writes), as with a standalone mongod.
"""

from __future__ import annotations

import socket
import struct
import sys
import tempfile
import uuid
from pathlib import Path

import bson
from bson.binary import UUID_SUBTYPE, Binary
from pymongo import MongoClient, monitoring

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_mongo import free_port, start_server


def op_msg(port: int, command: dict) -> dict:
    """One OP_MSG command on a new connection (a retry after a restart uses a new one)."""
    body = struct.pack("<I", 0) + b"\x00" + bson.encode(command)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(struct.pack("<iiii", 16 + len(body), 1, 0, 2013) + body)
        (length,) = struct.unpack("<i", sock.recv(16, socket.MSG_WAITALL)[:4])
        return bson.decode(sock.recv(length - 16, socket.MSG_WAITALL)[5:])


class _TxnNumbers(monitoring.CommandListener):
    def __init__(self) -> None:
        self.seen: list[bool] = []

    def started(self, event) -> None:
        if event.command_name == "insert":
            self.seen.append("txnNumber" in event.command)

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


def main(executable: str) -> int:
    storage = Path(tempfile.mkdtemp(prefix="secantus-retry-")) / "data"
    port = free_port()
    server, _ = start_server(executable, storage, port=port)
    try:
        listener = _TxnNumbers()
        client = MongoClient("127.0.0.1", port, event_listeners=[listener])
        client.repro.queue.insert_many([{"_id": i, "state": "READY"} for i in (1, 2, 3)])
        kind = client.topology_description.server_descriptions()[("127.0.0.1", port)]
        print(
            f"server type seen by pymongo: {kind.server_type_name}; "
            f"txnNumber on an insert: {listener.seen[0]}"
        )
        client.close()
        # what FireWorks does to check out a job: claim the first READY document
        claim = {
            "findAndModify": "queue",
            "query": {"state": "READY"},
            "sort": {"_id": 1},
            "update": {"$set": {"state": "TAKEN"}},
            "lsid": {"id": Binary(uuid.uuid4().bytes, UUID_SUBTYPE)},
            "txnNumber": bson.Int64(1),
            "$db": "repro",
        }
        first = op_msg(port, claim)["value"]
        print(f"attempt 1           -> {first}")
        again = op_msg(port, claim)["value"]
        print(f"retry, same server  -> {again}   (replayed, as mongod does)")
        server.terminate()
        server.wait(timeout=30)
        server, _ = start_server(executable, storage, port=port)
        after = op_msg(port, claim)["value"]
        print(f"retry after restart -> {after}   ({'replayed' if after == first else 'run again'})")
        return 0 if after == first else 1
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".venv-mongo/bin/secantusd-py"))
