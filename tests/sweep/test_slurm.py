"""The SLURM recipe under a real scheduler on real hosts: a two-host SLURM started once for this module.

``slurm_hosts.sh`` runs munged and slurmctld here and one slurmd per host, each host a Linux network
namespace on a private bridge (n1: 2 CPUs and n2: 1 CPU in the default partition, n3: 2 CPUs in its own),
with one more namespace on the same network as a stranger's host. Marked ``slurm``; skipped where the
daemons are not installed (``apt-get install slurm-wlm munge``) or not run as root. The one-node jobs and
the two-host job run at the same time (SLURM's waits overlap; the suite stays short):

- Two one-node jobs share the host n3 as two users' jobs would (their Ray heads must not collide): one meets
  its time limit and requeues itself until its sweep is done; another is stopped with ``scancel --batch
  --signal=TERM``, submitted again, then requeued with ``scontrol requeue``.
- One two-host job, on unequal hosts: trials run on both; the stranger's host, with no token and with a wrong
  one, is refused as a driver, through Ray Client and as a joining node; n2's Ray node killed is started again
  on its host; then the host n2 dies mid-trial and the job goes on without it.

Every config completes once, no completed trial runs again, Optuna is told each config once and never FAIL.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.slurm
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "sweep" / "launch" / "slurm.sbatch"
HOSTS = Path(__file__).with_name("slurm_hosts.sh")
DAEMONS = ("sbatch", "slurmctld", "slurmd", "munged", "nsenter", "unshare", "ip")


@pytest.fixture(scope="module")
def slurm():
    missing = [d for d in DAEMONS if not shutil.which(d, path=os.environ["PATH"] + ":/usr/sbin:/sbin")]
    if missing or os.geteuid() != 0:
        pytest.skip(f"a two-host SLURM needs root and {', '.join(missing) or 'the daemons'} (slurm-wlm, munge)")
    state = tempfile.mkdtemp(prefix="sh", dir="/tmp")  # short: Ray's socket paths under it stay < 107 bytes
    out = subprocess.run([str(HOSTS), "start", state], capture_output=True, text=True, timeout=180)
    try:
        assert out.returncode == 0, out.stderr
        hosts = dict(re.findall(r"^(SH_\w+)=['\"]?([^'\"\n]*)", Path(state, "hosts.env").read_text(), re.M))
        # RAY_TMPDIR: the same string on every host, each host's own folder behind it (a node-local /tmp)
        env = {**os.environ, "SLURM_CONF": f"{state}/slurm.conf", "RAY_TMPDIR": f"{state}/r"}
        yield {"env": env, "state": state, "hosts": hosts}
    finally:
        subprocess.run([str(HOSTS), "stop", state], capture_output=True, timeout=180)
        shutil.rmtree(state, ignore_errors=True)


def run(env, *cmd, timeout: float = 60) -> str:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd}: {out.stderr}"
    return out.stdout


def submit(
    env, folder: Path, name: str, *options, steps: int = 150, trials: int = 3, concurrent: int = 1, **job_vars
) -> str:
    """sbatch of the recipe, as a user would, with the project's Python named by MEANFLOW_PYTHON (``job_vars``:
    more of the job's environment)."""
    args = ["--name", name, "--space", "baselines", "--results-dir", str(folder / "results"), "--preset", "smoke"]
    args += ["--steps", str(steps), "--trials", str(trials), "--max-concurrent", str(concurrent), "--quiet"]
    args += ["--set", "fid_samples=64", "--set", "eval_every=50", "--set", "eval_samples=0"]
    job_env = {**env, "MEANFLOW_PYTHON": sys.executable, "PYTHONPATH": str(ROOT), **job_vars}
    opts = [f"--output={folder}/{name}-%j.log", *options]
    return run(job_env, "sbatch", "--parsable", *opts, str(SCRIPT), *args).strip().split(";")[0]


def job(env, job_id: str) -> dict:
    text = run(env, "scontrol", "show", "job", "-o", job_id)
    return dict(re.findall(r"(\w+)=(\S+)", text))


def ended(env, job_id: str) -> bool:
    return job(env, job_id)["JobState"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL")


def rows(folder: Path, name: str) -> pd.DataFrame | None:
    try:
        return pd.read_csv(folder / "results" / name / "trials.csv")
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return None


def completed(folder: Path, name: str, status: str = "completed") -> int:
    frame = rows(folder, name)
    return 0 if frame is None or "status" not in frame else int((frame["status"] == status).sum())


def assert_every_config_once(folder: Path, name: str, n: int = 3) -> None:
    import optuna

    trials = rows(folder, name)
    assert len(trials) == n and set(trials["status"]) == {"completed"}, trials[["trial_id", "status"]]
    assert trials["config.objective"].is_unique
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{folder / 'results' / name / 'optuna.db'}")
    told = [t for t in study.trials if t.state.name != "WAITING"]
    assert [t.state.name for t in told] == ["COMPLETE"] * n
    assert sorted(t.params["objective"] for t in told) == sorted(trials["config.objective"])


def assert_clean_logs(folder: Path, *names: str) -> None:
    for name in names:  # a clean end: no step killed, no Python traceback
        for log in folder.glob(f"{name}-*.log"):
            text = log.read_text()
            assert "Killed" not in text and "Traceback" not in text, text


def test_real_slurm_hosts_lose_no_config_run_none_twice_and_let_no_stranger_in(slurm, tmp_path):
    with ThreadPoolExecutor(2) as pool:  # the two-host job's waits beside these jobs' waits
        two = pool.submit(two_hosts_closed_to_strangers_survive_a_lost_ray_node_and_a_dead_host, slurm, tmp_path)
        one_node_jobs_time_limit_scancel_and_requeue(slurm, tmp_path)
        two.result()


def one_node_jobs_time_limit_scancel_and_requeue(slurm, tmp_path):
    env = slurm["env"]
    share = ("--exclusive=user", "--partition=single")  # two one-node jobs share n3, as one user's jobs do
    # SLURM checks limits once a minute, so with --time=3 and the warning at 60 s the driver runs 120-180 s of
    # an allocation, about 35 s of it starting (the job, Ray, the driver, the trial): more work than the most
    # one allocation holds (about 3 minutes of training on two busy cores), so the limit is always met
    limited = submit(env, tmp_path, "limit", *share, "--nodes=1", "--time=3", "--signal=B:USR1@60", steps=800)
    stopped = submit(env, tmp_path, "stop", *share, "--nodes=1")

    wait_for(lambda: completed(tmp_path, "stop") >= 1, 300, "a first trial of the stopped sweep", every=2)
    first = rows(tmp_path, "stop").query("status == 'completed'")
    run(env, "scancel", "--batch", "--signal=TERM", stopped)  # the user's clean stop: the batch script only
    wait_for(lambda: ended(env, stopped), 120, "the stopped job to end", every=2)
    info = job(env, stopped)
    assert (info["JobState"], info["ExitCode"]) == ("FAILED", "143:0"), info
    log = (tmp_path / f"stop-{stopped}.log").read_text()
    assert "interrupted by SIGTERM" in log and "continue with python -m sweep.run --resume --name stop" in log, log

    # the same command, submitted again: it continues. Tune's periodic save an hour away: the requeue lands in
    # the third trial's first seconds, before any save holds it (its first checkpoint would force one)
    again = submit(env, tmp_path, "stop", *share, "--nodes=1", TUNE_GLOBAL_CHECKPOINT_S="3600")
    third = lambda: completed(tmp_path, "stop") >= 2 and completed(tmp_path, "stop", "running") == 1  # noqa: E731
    wait_for(third, 300, "the third trial's start after the resubmission", every=0.2)
    run(env, "scontrol", "requeue", again)
    wait_for(lambda: ended(env, again), 400, "the requeued job to finish", every=2)
    info = job(env, again)
    assert (info["JobState"], info["ExitCode"], info["Restarts"]) == ("COMPLETED", "0:0", "1"), info
    assert_every_config_once(tmp_path, "stop")
    kept = rows(tmp_path, "stop").set_index("trial_id")
    assert list(kept.loc[first["trial_id"], "final_fid"]) == list(first["final_fid"])  # never run again

    wait_for(lambda: ended(env, limited), 600, "the time-limited job to finish", every=2)
    info = job(env, limited)
    assert info["JobState"] == "COMPLETED" and int(info["Restarts"]) >= 1, info
    log = (tmp_path / f"limit-{limited}.log").read_text()
    assert "time limit near: requeued" in log, log
    assert_every_config_once(tmp_path, "limit")
    assert_clean_logs(tmp_path, "limit", "stop")


# ------------------------------------------------------------------ the stranger's host
STRANGER = {
    # the GCS, the door of every driver and tool: the cluster's id is the first thing Ray's clients ask it
    "gcs": "import sys\nfrom ray._raylet import GcsClient\nGcsClient(address=sys.argv[1])\nprint('accepted')",
    # Ray Client, the head's port 10001 (ray[client] is installed here, so the head serves it)
    "ray client": "import sys\nimport ray\nray.init('ray://' + sys.argv[1].rsplit(':', 1)[0] + ':10001')\nprint('ok')",
}


def as_stranger(slurm, what: str, address: str, token: str | None, scratch: Path) -> subprocess.CompletedProcess:
    """``what`` from the foreign host's network namespace, with no Ray token at all or with ``token``."""
    ns = f"/run/netns/{slurm['hosts']['SH_NS_foreign']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS", "SLURM"))}
    scratch.mkdir(parents=True, exist_ok=True)
    env |= {"HOME": str(scratch), "RAY_TMPDIR": str(scratch), "RAY_USAGE_STATS_ENABLED": "0"}
    if token:
        env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    if what == "joining node":  # a raylet of its own offered to the head
        cmd = [sys.executable, "-c", "from ray.scripts.scripts import main; main()", "start", f"--address={address}"]
        cmd += ["--num-cpus=1", "--block"]
    else:
        cmd = [sys.executable, "-c", STRANGER[what], address]
    return subprocess.run(["nsenter", f"--net={ns}", *cmd], env=env, capture_output=True, text=True, timeout=120)


def ray_nodes(slurm, job_id: str, address: str) -> list[dict]:
    """The cluster's alive nodes as Ray sees them, asked by a driver on n1 (a driver needs a Ray node of its
    host) run in the job's allocation, with the token the recipe made (the module's: RAY_AUTH_TOKEN_PATH)."""
    ask = "import json, sys, ray\nray.init(address=sys.argv[1], log_to_driver=False)\nprint(json.dumps(ray.nodes()))"
    out = subprocess.run(
        ["srun", "--overlap", f"--jobid={job_id}", "--nodes=1", "--ntasks=1", "-w", "n1", sys.executable, "-c", ask,
         address],
        env=slurm["env"], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return [n for n in json.loads(out.stdout.strip().splitlines()[-1]) if n["Alive"]]


def trial_hosts(folder: Path, name: str) -> set[str]:
    """The addresses of the hosts the sweep's trials reported from (Tune writes node_ip into result.json)."""
    found = set()
    for result in (folder / "results" / name / "ray").glob("*/*/result.json"):
        for line in result.read_text().splitlines():
            try:
                found.add(json.loads(line)["node_ip"])
            except (ValueError, KeyError):
                continue
    return found


def two_hosts_closed_to_strangers_survive_a_lost_ray_node_and_a_dead_host(slurm, tmp_path):
    """Unequal hosts used whole, a stranger refused every way in, a lost Ray node started again, a dead host."""
    env, hosts = slurm["env"], slurm["hosts"]
    n1, n2 = hosts["SH_IP_n1"], hosts["SH_IP_n2"]
    two = submit(env, tmp_path, "two", "--nodes=2", "--exclusive", steps=400, trials=4, concurrent=3)
    log = tmp_path / f"two-{two}.log"
    text = lambda: log.read_text() if log.is_file() else ""  # noqa: E731
    wait_for(lambda: "sweep.run --name two" in text(), 180, "the two-host Ray to start", every=2)
    address = re.search(r"head n1 \((\S+)\)", text()).group(1)
    assert address.startswith(n1 + ":") and "n1: 2 CPUs" in text() and "n2: 1 CPUs" in text(), text()

    # unequal hosts: each node's Ray holds its own host's CPUs
    nodes = ray_nodes(slurm, two, address)
    assert sorted((n["NodeManagerAddress"], n["Resources"]["CPU"]) for n in nodes) == [(n1, 2.0), (n2, 1.0)]
    wait_for(lambda: trial_hosts(tmp_path, "two") >= {n1, n2}, 300, "trials reporting from both hosts", every=2)

    # the stranger, while trials run: no token, then a wrong one, each way in, from a host on the same network
    own = Path(env["RAY_AUTH_TOKEN_PATH"]).read_text().strip()
    tries = [(what, token) for what in ("gcs", "ray client", "joining node") for token in (None, "0" * 64, own)]
    tries.remove(("joining node", own))  # a node with the secret would join: it is the cluster's own
    pool = ThreadPoolExecutor(len(tries))
    futures = {
        (what, token): pool.submit(as_stranger, slurm, what, address, token, tmp_path / f"s{i}")
        for i, (what, token) in enumerate(tries)
    }

    # meanwhile n2's Ray node dies (its host lives): the recipe starts it again there
    raylets = [
        int(p)
        for p in run(env, "ip", "netns", "pids", hosts["SH_NS_n2"]).split()
        if Path(f"/proc/{p}/comm").read_text().strip() == "raylet"
    ]
    assert raylets, "no raylet on n2"
    for pid in raylets:
        os.kill(pid, 9)
    wait_for(lambda: "the Ray node on n2 exited" in text() and "starting it again (1 of 3)" in text(), 120,
             "the recipe to start n2's Ray node again", every=2)  # fmt: skip
    wait_for(lambda: {n["NodeManagerAddress"] for n in ray_nodes(slurm, two, address)} == {n1, n2}, 120,
             "n2's Ray node back in the cluster", every=3)  # fmt: skip

    # then the host n2 dies, with trials left to run: SLURM keeps the job (--no-kill), Ray moves n2's trial
    assert completed(tmp_path, "two") < 3, "the sweep is nearly over: the host would die after the work"
    run(env, str(HOSTS), "kill-host", slurm["state"], "n2", timeout=120)
    try:
        outcomes = {key: f.result() for key, f in futures.items()}
        pool.shutdown()
        for (what, token), out in outcomes.items():
            let_in = out.returncode == 0 and out.stdout.strip().splitlines()[-1:] in (["accepted"], ["ok"])
            if token == own:  # the same host and door with the secret is let in: the token keeps the rest out
                for attempt in range(2):  # Ray Client's per-client server can miss its start on two busy cores
                    if let_in or "Starting Ray client server failed" not in out.stderr:
                        break
                    out = as_stranger(slurm, what, address, token, tmp_path / f"again{attempt}")
                    let_in = out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == ["ok"]
                assert let_in, (what, out.stderr[-1500:])
            else:
                assert not let_in, (what, token, out.stderr[-1500:])
                assert own not in out.stdout + out.stderr
        assert {n["NodeManagerAddress"] for n in ray_nodes(slurm, two, address)} <= {n1, n2}  # no stranger joined
        wait_for(lambda: ended(env, two), 600, "the two-host job to finish", every=3)
    finally:
        subprocess.run([str(HOSTS), "revive-host", slurm["state"], "n2"], capture_output=True, timeout=180)
    info = job(env, two)
    assert (info["JobState"], info["ExitCode"]) == ("COMPLETED", "0:0"), (info, text()[-4000:])
    assert re.search(r"the Ray node on n2 exited \(exit \d+\) and n2 is out of the allocation", text()), text()
    assert_every_config_once(tmp_path, "two", n=4)
    assert rows(tmp_path, "two")["restarts"].fillna(0).sum() >= 1  # a trial moved off a lost node
    assert own not in text() and not any(h.startswith(hosts["SH_IP_foreign"]) for h in trial_hosts(tmp_path, "two"))
