"""No credentials anywhere: a campaign on a password-protected MongoDB, grepped for the password.

The test server gets a user whose password has a space and a ``#`` (the cases YAML quoting and
naive redaction get wrong). The LaunchPad file gives it as quoted block YAML, the JobStore file
inside a ``mongodb://user:password@`` URI in flow-style YAML. Then the user's path: ``submit``,
a FireWorks worker (``rlaunch``, reading its own ``JOBFLOW_CONFIG_FILE``), ``status``, and
broken variants of both files; every output, every file written and every document in both
databases is searched for the password.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote, urlparse

import pytest

pytestmark = pytest.mark.filterwarnings("ignore")

USER = "pf-user-x7"
PASSWORD = "Pl4nted pw#Zq9"
FORMS = (PASSWORD, quote(PASSWORD, safe=""), quote(PASSWORD), PASSWORD.split()[0] + "%20")


def _assert_clean(text: str, where: str) -> None:
    for form in FORMS:
        assert form not in text, f"the password ({form!r}) is in {where}"


@pytest.fixture
def protected(mongo_uri, tmp_path):
    from pymongo import MongoClient

    url = urlparse(mongo_uri)
    host, port = url.hostname or "127.0.0.1", url.port or 27017
    client = MongoClient(mongo_uri, serverSelectionTimeoutMS=10000)
    try:
        client.admin.command("createUser", USER, pwd=PASSWORD, roles=["root"])
    except Exception as exc:
        if "already exists" not in str(exc):
            raise
    db = f"pf_{uuid.uuid4().hex[:12]}"
    lp = tmp_path / "my_launchpad.yaml"
    lp.write_text(
        f'host: {host}\nport: {port}\nname: {db}\nusername: "{USER}"\n'
        f'password: "{PASSWORD}"\nauthsource: admin\n'
    )
    uri = f"mongodb://{USER}:{quote(PASSWORD, safe='')}@{host}:{port}/?authSource=admin"
    store = '{{type: MongoURIStore, uri: "{uri}", database: {db}, collection_name: {c}}}'
    jf = tmp_path / "jobflow.yaml"
    jf.write_text(
        "JOB_STORE: {docs_store: "
        + store.format(uri=uri, db=db, c="outputs")
        + ", additional_stores: {data: "
        + store.format(uri=uri, db=db, c="outputs_blobs")
        + "}}\n"
    )
    for f in (lp, jf):
        f.chmod(0o600)
    yield tmp_path, lp, jf, db, client
    client.drop_database(db)
    client.close()


def _run(args, env, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_a_campaign_on_a_protected_mongodb_never_shows_the_password(protected):
    from polaronflow.emulator.fast import fast_parameters_file

    root, lp, jf, db, client = protected
    bin_dir = Path(sys.executable).parent
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FW_", "JOBFLOW_"))},
        "HOME": str(root),
        "JOBFLOW_CONFIG_FILE": str(jf),
        "POLARONFLOW_PROJECT_DIR": str(root / "project"),
        "PF_TEST_DIR": str(Path(__file__).parent),
    }
    outputs = []
    fast = fast_parameters_file(root / "fast.yaml")
    submit = _run(
        [str(bin_dir / "polaronflow"), "submit", "--launchpad", str(lp), "--jobstore", str(jf),
         "--ion", "Mg", "--schedule", "9,5", "--supercell", "2", "1", "1", "--no-references",
         "--potcar-spec", "--incar-yaml", str(fast)],
        env, root,
    )  # fmt: skip
    assert submit.returncode == 0, submit.stderr
    outputs.append(("submit", submit))
    # every Firework as FireWorks shows it (what `lpad get_fws -d all` prints)
    fireworks_dump = "\n".join(str(d) for d in client[db]["fireworks"].find({}))
    _assert_clean(fireworks_dump, "the Fireworks")
    assert "MongoURIStore" not in fireworks_dump  # no JobStore travels with the jobs
    # a FireWorks worker runs the first job with the emulator, reading its own JobStore
    sys.path.insert(0, str(Path(__file__).parent))
    from test_mongo_workers import WORKER

    (root / "worker.py").write_text(WORKER)
    (root / "my_fworker.yaml").write_text("name: w\ncategory: ''\nquery: '{}'\n")
    (root / "w").mkdir()
    worker = _run(
        [sys.executable, str(root / "worker.py"), "-l", str(lp), "-w",
         str(root / "my_fworker.yaml"), "singleshot"],
        env, root / "w",
    )  # fmt: skip
    assert worker.returncode == 0, worker.stdout + worker.stderr
    outputs.append(("rlaunch", worker))
    done = client[db]["fireworks"].count_documents({"state": "COMPLETED"})
    assert done == 1 and client[db]["outputs"].count_documents({}) == 1
    status = _run(
        [str(bin_dir / "polaronflow"), "status", "--launchpad", str(lp), "--json"], env, root
    )
    assert status.returncode == 0, status.stderr
    outputs.append(("status", status))
    # broken files: one-line errors without the password
    bad_lp = root / "bad_lp.yaml"
    bad_lp.write_text(lp.read_text().replace(f'"{PASSWORD}"', f'["{PASSWORD}"'))
    bad_jf = root / "bad_jf.yaml"
    bad_jf.write_text(jf.read_text().replace("MongoURIStore,", "MongoURIStore,, {"))
    for name, args in (
        ("status on a broken LaunchPad file", ["status", "--launchpad", str(bad_lp)]),
        ("submit with a broken JobStore file", ["submit", "--launchpad", str(lp),
                                                "--jobstore", str(bad_jf)]),
    ):  # fmt: skip
        bad = _run([str(bin_dir / "polaronflow"), *args], env, root)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        outputs.append((name, bad))
    for name, proc in outputs:
        _assert_clean(proc.stdout + proc.stderr, f"the output of {name}")
    # every file the campaign wrote (the two configuration files are the user's, 0600)
    for path in root.rglob("*"):
        if path.is_file() and path not in (lp, jf, bad_lp, bad_jf):
            _assert_clean(path.read_bytes().decode("utf-8", errors="replace"), str(path))
    for f in (lp, jf):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    # every document of the database (LaunchPad and JobStore)
    for name in client[db].list_collection_names():
        _assert_clean("\n".join(str(d) for d in client[db][name].find({})), f"collection {name}")
