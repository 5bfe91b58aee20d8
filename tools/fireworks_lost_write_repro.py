"""What FireWorks leaves when one write is lost while it records a finished job.

FireWorks records a job's end in several writes without a transaction: the launch, then,
under the workflow's lock, the Firework, its children and the workflow document. Here the
last of them (the workflow document) fails once, as a write in flight during a MongoDB
restart does on a standalone server (no retry), or when pymongo's one retry fails too.
Output with FireWorks 2.1.4 (exit status 1: the parent's task ran twice)::

    parent ran
    after worker A:
      child   READY      launches []
      parent  FIZZLED    launches ['FIZZLED']
    child ran
    after worker B:
      child   WAITING    launches ['COMPLETED']
      parent  FIZZLED    launches ['FIZZLED']
    parent ran
    after rerunning FIZZLED jobs and running until done:
      child   COMPLETED  launches ['COMPLETED']
      parent  COMPLETED  launches ['COMPLETED', 'FIZZLED']

Run: ``python tools/fireworks_lost_write_repro.py .venv-mongo/bin/secantusd-py``.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_mongo import start_server


def main(executable: str) -> int:
    from fireworks import Firework, FWorker, LaunchPad, ScriptTask, Workflow
    from fireworks.core.rocket_launcher import launch_rocket
    from pymongo.errors import AutoReconnect

    logging.disable(logging.CRITICAL)
    tmp = Path(tempfile.mkdtemp(prefix="fw-lost-write-"))
    server, port = start_server(executable, tmp / "data")
    os.chdir(tmp)
    try:
        lp = LaunchPad(host="127.0.0.1", port=port, name="lost_write", strm_lvl="CRITICAL")
        lp.reset("", require_password=False)
        parent = Firework(ScriptTask.from_str("echo parent ran"), name="parent", fw_id=-1)
        child = Firework(
            ScriptTask.from_str("echo child ran"), name="child", parents=[parent], fw_id=-2
        )
        lp.add_wf(Workflow([parent, child]))

        original, calls = LaunchPad._update_wf, []

        def update_wf(self, wf, updated_ids):
            calls.append(updated_ids)
            if len(calls) == 2:  # 1st: the checkout's refresh; 2nd: the job's end
                self._upsert_fws([wf.id_fw[i] for i in updated_ids])  # these got through
                raise AutoReconnect("connection closed")  # the workflow document's did not
            return original(self, wf, updated_ids)

        def show(tag: str) -> None:
            print(tag)
            for fw in lp.fireworks.find().sort("fw_id"):
                ids = fw["launches"] + fw.get("archived_launches", [])
                states = [lp.launches.find_one({"launch_id": i})["state"] for i in ids]
                print(f"  {fw['name']:7s} {fw['state']:10s} launches {states}")

        LaunchPad._update_wf = update_wf
        launch_rocket(lp, FWorker())  # worker A runs the parent; one write is lost at its end
        LaunchPad._update_wf = original
        show("after worker A:")
        launch_rocket(lp, FWorker())  # worker B runs whatever is READY
        show("after worker B:")
        for fw in lp.fireworks.find({"state": "FIZZLED"}, {"fw_id": 1}):
            lp.rerun_fw(fw["fw_id"])
        while launch_rocket(lp, FWorker()):
            pass
        show("after rerunning FIZZLED jobs and running until done:")
        parent_id = lp.fireworks.find_one({"name": "parent"})["fw_id"]
        parent_runs = lp.launches.count_documents({"fw_id": parent_id})
        return 1 if parent_runs > 1 else 0
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".venv-mongo/bin/secantusd-py"))
