"""Ray's token authentication on the Ray a sweep starts for itself, and on a cluster without it.

A stranger is a process of the same machine with another HOME and no token (or a wrong one): it reaches the
sweep's Ray ports as anyone on the network would, and must be refused.
"""

import os
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import start_driver, sweep_args, wait_for

ROOT = Path(__file__).resolve().parents[2]
OWN = Path(".cache") / "meanflow-sweep" / "secrets" / "ray_auth_token"  # under HOME

# Asks the GCS at argv[1] for its cluster id as Ray's own clients do first (ray.init, ray start, the client
# server), with whatever token this process's environment gives it; prints "refused" or "accepted".
ASK = """
import sys
from ray._raylet import GcsClient
from ray.exceptions import AuthenticationError
try:
    GcsClient(address=sys.argv[1])
    print("accepted")
except AuthenticationError:
    print("refused")
"""


def without_auth(home: Path, **extra) -> dict:
    """The environment with no Ray token variable at all (a user who never set one) and its own HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH") and k != "RAY_ADDRESS"}
    home.mkdir(parents=True, exist_ok=True)
    return {**env, "HOME": str(home), "PYTHONPATH": str(ROOT), **extra}


def ask(address: str, env: dict) -> str:
    out = subprocess.run([sys.executable, "-c", ASK, address], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


@pytest.fixture
def ray_tmp():
    """A short private Ray temp folder (Ray's socket paths must stay under 107 characters)."""
    folder = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    yield folder
    subprocess.run(["rm", "-rf", folder], check=False)


def test_the_projects_token_is_made_once_private_and_never_printed(tmp_path):
    env = without_auth(tmp_path / "home")
    paths = [
        subprocess.run([sys.executable, "-m", "sweep.auth", "path"], env=env, capture_output=True, text=True)
        for _ in range(2)
    ]
    assert [p.returncode for p in paths] == [0, 0], paths[0].stderr
    token_file = tmp_path / "home" / OWN
    assert paths[0].stdout.strip() == paths[1].stdout.strip() == str(token_file)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
    token = token_file.read_text().strip()
    assert len(token) == 64 and token not in paths[0].stdout + paths[0].stderr


def test_a_local_sweep_refuses_strangers_and_its_token_stays_out_of_every_file(tmp_path, ray_tmp):
    env = without_auth(tmp_path / "home", RAY_TMPDIR=ray_tmp)
    args = sweep_args("baselines", tmp_path / "results", "locked", 400, "--trials", "1", fid_samples=32, eval_every=0)
    proc = start_driver(args, base=env)
    try:
        rows = tmp_path / "results" / "locked" / "trials.csv"
        wait_for(lambda: rows.is_file() and "running" in rows.read_text(), 120, "the trial to start")
        port_file = next((Path(ray_tmp) / "ray" / "session_latest").glob("gcs_server_port_*"))
        address = f"127.0.0.1:{port_file.read_text().strip()}"  # the GCS listens on every interface
        token_file = tmp_path / "home" / OWN
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
        token = token_file.read_text().strip()

        stranger = without_auth(tmp_path / "stranger")
        wrong = tmp_path / "wrong"
        wrong.write_text("0" * 64)
        wrong.chmod(0o600)
        assert ask(address, stranger) == "refused"  # no token
        assert ask(address, {**stranger, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64}) == "refused"
        assert ask(address, {**stranger, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(wrong)}) == "refused"
        owner = {**stranger, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file)}
        assert ask(address, owner) == "accepted"  # the same question with the secret: the lock is the token

        # no command line on the machine carries it (ps shows them to every user)
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                assert token not in cmdline.read_bytes().decode(errors="replace"), cmdline
            except OSError:
                continue
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-3000:]
    assert token not in out
    for root in (tmp_path / "results", Path(ray_tmp)):  # sweep.json, trials.csv, Tune's state, Ray's logs
        for path in root.rglob("*"):
            if path.is_file() and not path.is_socket():
                assert token.encode() not in path.read_bytes(), path


def test_a_cluster_without_authentication_is_joined_with_a_warning_naming_the_risk(tmp_path, ray_tmp):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # authentication off on purpose: this test is about a cluster somebody else started without it
    env = without_auth(tmp_path / "home", RAY_TMPDIR=ray_tmp, RAY_AUTH_MODE="disabled")
    ray_cli = [sys.executable, "-c", "from ray.scripts.scripts import main; main()"]
    head = [*ray_cli, "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false", "--block"]
    # its own process group, stopped alone at the end (`ray stop` would stop every Ray of this user here)
    started = subprocess.Popen(
        head, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:

        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_for(listening, 120, "the head without authentication")
        join = "import ray, sys\nfrom sweep.cluster import connect\nconnect(sys.argv[1])\nprint(len(ray.nodes()))"
        user = without_auth(tmp_path / "home", RAY_TMPDIR=ray_tmp)  # no token: the cluster asks for none
        out = subprocess.run(
            [sys.executable, "-c", join, f"127.0.0.1:{port}"], env=user, capture_output=True, text=True, timeout=120
        )
    finally:
        os.killpg(started.pid, signal.SIGTERM)
        try:
            started.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(started.pid, signal.SIGKILL)
    assert out.returncode == 0 and out.stdout.strip() == "1", out.stderr[-2000:]
    assert f"the Ray cluster at 127.0.0.1:{port} takes connections without a token" in out.stderr
    assert "anyone who reaches its ports can run code as its user" in out.stderr


def test_a_token_file_other_users_can_read_is_refused_before_anything_is_written(tmp_path):
    loose = tmp_path / "token"
    loose.write_text("1" * 64)
    loose.chmod(0o644)
    args = sweep_args("baselines", tmp_path / "results", "loose", 10, "--trials", "1")
    proc = start_driver(args, RAY_AUTH_TOKEN_PATH=str(loose))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, out[-2000:]
    assert f"the Ray token file {loose} can be read or written by other users (mode 0644)" in out
    assert "Traceback" not in out and not (tmp_path / "results" / "loose").exists()
