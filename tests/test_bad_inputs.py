"""Bad input and damaged state across every command-line tool, table-driven.

Each case: exit 2 (usage) with one sentence naming the bad value, no traceback,
and no file under the scratch folder created, changed or removed. The CLIs run
in this process; every check here fails before Ray starts or training begins.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pytest

from tests.bad_keys import EXTRA_CASES


def make_scratch(root: Path) -> Path:
    """A results folder with one intact sweep and one of each kind of damage, a file, a damaged FID cache."""
    results = root / "results"
    good = results / "good"
    good.mkdir(parents=True)
    (good / "sweep.json").write_text(
        json.dumps({"name": "good", "space": "baselines", "preset": "smoke", "base": {"preset": "smoke"}, "trials": 3})
    )
    (good / "trials.csv").write_text("trial_id,status,final_fid,fid_kind,config_hash,seed,finished_at\n")
    for name, sweep_json in (
        ("empty-json", ""),
        ("bad-json", "{not json"),
        ("bad-space", '{"space": "nope", "preset": "smoke", "base": {}}'),
    ):
        (results / name).mkdir()
        (results / name / "sweep.json").write_text(sweep_json)
    (results / "bad-trials").mkdir()
    (results / "bad-trials" / "sweep.json").write_text((good / "sweep.json").read_text())
    (results / "bad-trials" / "trials.csv").write_bytes(b"trial_id,status,final_fid\nabc,completed,1.0\nxyz,compl")
    (results / "bad-db").mkdir()
    (results / "bad-db" / "sweep.json").write_text((good / "sweep.json").read_text())
    (results / "bad-db" / "optuna.db").write_bytes(b"this is not a database")
    (results / "no-json").mkdir()  # a start that failed before sweep.json was written
    (results / "bad-plan").mkdir()  # a confirmation whose plan is garbage
    (results / "bad-plan" / "sweep.json").write_text((good / "sweep.json").read_text())
    (results / "bad-plan" / "confirm.json").write_text("{oops")
    (results / "bad-type").mkdir()  # parses, but a setting has the wrong type
    saved = json.loads((good / "sweep.json").read_text())
    (results / "bad-sampler").mkdir()  # a sampler no release knows
    for name, bad in (("bad-type", {"trials": "3"}), ("bad-sampler", {"sampler": "grid"})):
        (results / name / "sweep.json").write_text(json.dumps({**saved, **bad}))
    (results / "bad-number").mkdir()
    (results / "bad-number" / "sweep.json").write_text((good / "sweep.json").read_text())
    (results / "bad-number" / "trials.csv").write_text("trial_id,status,final_fid,seed\nabc,completed,lots,0\n")
    (results / "bad-plan-type").mkdir()
    (results / "bad-plan-type" / "sweep.json").write_text((good / "sweep.json").read_text())
    plan = {"top": 1, "seeds": ["1", "2"], "configs": [], "level": 0.05}
    (results / "bad-plan-type" / "confirm.json").write_text(json.dumps(plan))
    (results / "bad-plan-objectives").mkdir()  # plans record their named objectives: a list of names
    (results / "bad-plan-objectives" / "sweep.json").write_text((good / "sweep.json").read_text())
    config = {"config_hash": "h", "label": "meanflow", "baseline": "meanflow", "params": {"objective": "meanflow"}}
    plan = {"top": 1, "objectives": 7, "seeds": [1, 2], "configs": [config], "level": 0.05}
    (results / "bad-plan-objectives" / "confirm.json").write_text(json.dumps(plan))
    (results / "open").mkdir()  # a sweep folder anyone can write: its pickles are not to be trusted
    (results / "open" / "sweep.json").write_text((good / "sweep.json").read_text())
    (results / "open").chmod(0o777)
    (root / "all-damaged" / "x").mkdir(parents=True)  # every sweep of this results folder is damaged
    (root / "all-damaged" / "x" / "trials.csv").write_bytes(b"trial_id,status\nabc,compl")
    (root / "a-file").write_text("not a folder")
    cache = root / "fid-cache"
    cache.mkdir()
    (cache / "cifar10_clean_train_32.npz").write_bytes(b"garbage")
    (cache / "inception-2015-12-05.pt").write_bytes(b"PK\x03\x04 truncated")
    fm_only = {"what": "train_step", "target": "pureflow", "variant": "fast", "ms_per_step": 20.0}
    (root / "bench-fm-only.jsonl").write_text(json.dumps(fm_only) + "\n")  # step costs of flow matching alone
    ckpt = root / "run-garbage" / "ckpt"
    ckpt.mkdir(parents=True)
    (ckpt / "checkpoint.pt").write_bytes(b"not a checkpoint")
    return root


def snapshot(root: Path) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


R = "{root}/results"
SIM = "{root}/simulation"  # a folder sweep.simulate would create
NPZ, FM = "{root}/fid-cache/cifar10_clean_train_32.npz", "{root}/bench-fm-only.jsonl"  # not step-cost tables
LANDSCAPE = str(Path(__file__).parents[1] / "sweep" / "simulate" / "landscapes" / "alpha_schedules.csv")
CASES = EXTRA_CASES + [
    # --- python -m trainer ---
    ("trainer", ["--set", "lr=abc"], "lr='abc' must be a number"),
    ("trainer", ["--set", "lr=nan"], "lr=nan must be a finite number"),
    ("trainer", ["--set", "lr=1e999"], "lr=inf must be a finite number"),
    ("trainer", ["--set", "lr=-1"], "lr=-1.0 must be > 0"),
    ("trainer", ["--set", "steps=1.5"], "steps=1.5 must be an integer"),
    ("trainer", ["--set", "steps=1e3"], "steps=1000.0 must be an integer"),
    ("trainer", ["--steps", "0"], "steps=0 must be a positive integer"),
    ("trainer", ["--set", "fid_samples=1"], "fid_samples=1 must be at least 2"),
    ("trainer", ["--set", "eval_samples=1"], "eval_samples=1 must be 0 (off) or at least 2"),
    ("trainer", ["--seed", "99999999999999999999999"], "seed=99999999999999999999999 must be an integer in [0, "),
    ("trainer", ["--seed", "-1"], "seed=-1 must be an integer in [0, "),
    ("trainer", ["--set", "compile=maybe"], "compile='maybe' must be True or False"),
    ("trainer", ["--set", "time_mean_r=abc"], "time_mean_r='abc' must be a number"),
    ("trainer", ["--set", "alpha.value=abc"], "alpha schedule parameter value='abc' must be a finite number"),
    ("trainer", ["--set", "alpha.schedule=linear", "--set", "alpha.start=nan"], "parameter start=nan must be a finite"),
    ("trainer", ["--set", "ema_decay=1.5"], "ema_decay=1.5 must be in [0, 1)"),
    ("trainer", ["--set", "fid_nfe=0"], "fid_nfe=0 must be step counts"),
    ("trainer", ["--set", "target=bogus"], "unknown target 'bogus'"),
    ("trainer", ["--set", "tangent_beta=0.5"], "tangent_beta=0.5 has no effect on target 'meanflow'; it applies to:"),
    ("trainer", ["--set", "target=vr_meanflow", "--set", "tangent_beta=2"], "tangent_beta=2.0 must be in [0.0, 1.0]"),
    ("trainer", ["--set", "alpha.schedule=exponential", "--set", "alpha.final=0"], "needs start > 0 and final > 0"),
    ("trainer", ["--set", "alpha.schedule=warmup", "--set", "alpha.until=0"], "alpha warmup until=0 must be > 0"),
    ("trainer", ["--set", "bogus=1"], "unknown config key 'bogus'"),
    ("trainer", ["--set", "novalue"], "--set 'novalue' is not KEY=VALUE"),
    ("trainer", ["--device", "foo"], "device 'foo' is not auto, cpu, cuda or cuda:N"),
    ("trainer", ["--device", "cuda"], "no CUDA GPU is visible"),
    ("trainer", ["--out-dir", "{root}/a-file"], "--out-dir {root}/a-file is a file"),
    ("trainer", ["--set", "dataset=cifar10", "--data-dir", "{root}/nowhere"], "CIFAR-10 is not in {root}/nowhere"),
    (
        "trainer",
        ["--out-dir", "{root}/run-garbage", "--set", "checkpoint_every=5"],
        "checkpoint {root}/run-garbage/ckpt/checkpoint.pt is not a readable checkpoint",
    ),
    ("trainer", ["--set", "fid_mode=clean-fid", "--fid-cache", "{root}/fid-cache"], "is not clean-fid's statistics"),
    # --- python -m trainer.fid ---
    (
        "trainer.fid",
        ["check", "--fid-cache", "{root}/fid-cache"],
        "cifar10_clean_train_32.npz in {root}/fid-cache is not",
    ),
    (
        "trainer.fid",
        ["check", "--fid-cache", "{root}/none"],
        "cifar10_clean_train_32.npz is missing from the FID cache",
    ),
    ("trainer.fid", ["prepare", "--fid-cache", "{root}/new-cache"], "MEANFLOW_OFFLINE=1 forbids downloads"),
    ("trainer.fid", ["bogus"], "invalid choice: 'bogus'"),
    # --- python -m trainer.bench ---
    ("trainer.bench", ["--only", "bogus"], "--only 'bogus' names bogus; choose from step, naive, sampler, fid"),
    ("trainer.bench", ["--cases", "meanflow,nope"], "--cases 'meanflow,nope' names nope; choose from pureflow,"),
    ("trainer.bench", ["--device", "foo"], "--device foo is not cpu, cuda or cuda:N"),
    ("trainer.bench", ["--steps", "0"], "--steps 0 must be a positive integer"),
    ("trainer.bench", ["--size", "huge"], "invalid choice: 'huge'"),
    (
        "trainer.bench",
        ["--precision-check", "--checkpoint", "{root}/none.pt"],
        "--checkpoint {root}/none.pt is not a file",
    ),
    (
        "trainer.bench",
        ["--precision-check", "--checkpoint", "{root}/run-garbage/ckpt/checkpoint.pt"],
        "is not a readable trial checkpoint",
    ),
    ("sweep.confirm", ["--results-dir", R, "--name", "bad-plan"], "bad-plan/confirm.json is damaged"),
    # --- python -m sweep.run ---
    ("sweep.run", ["--results-dir", R, "--name", "compile-cache"], "--name compile-cache is the results folder's"),
    ("sweep.run", ["--results-dir", R, "--set", "lr=abc"], "lr='abc' must be a number"),
    (
        "sweep.run",
        ["--results-dir", R, "--storage", "postgresql://me:s3cret@db.example/sweeps"],
        "--storage: the database URL carries a password, which ps shows to every user",
    ),
    ("sweep.run", ["--results-dir", R, "--resume", "--name", "open"], "{root}/results/open is writable by every user"),
    ("sweep.auth", ["token"], "python -m sweep.auth takes one word, path; got 'token'"),
    ("sweep.run", ["--results-dir", R, "--set", "steps=1.5"], "steps=1.5 must be an integer"),
    ("sweep.run", ["--results-dir", R, "--sampler", "grid"], "argument --sampler: invalid choice: 'grid'"),
    ("sweep.run", ["--results-dir", R, "--scheduler", "hyperband", "--seeds", "2"], "--seeds > 1 cannot go with"),
    ("sweep.run", ["--results-dir", R, "--seed", "99999999999999999999999"], "--seed 99999999999999999999999 must be"),
    ("sweep.run", ["--results-dir", R, "--cpus-per-trial", "nan"], "--cpus-per-trial nan must be a finite number > 0"),
    ("sweep.run", ["--results-dir", R, "--gpus-per-trial", "inf"], "--gpus-per-trial inf must be a finite number"),
    ("sweep.run", ["--results-dir", R, "--trials", "1.5"], "invalid int value: '1.5'"),
    ("sweep.run", ["--results-dir", R, "--max-concurrent", "0"], "--max-concurrent 0 must be at least 1"),
    ("sweep.run", ["--results-dir", R, "--storage", "bogus"], "--storage 'bogus' is not sqlite, journal"),
    ("sweep.run", ["--results-dir", R, "--name", "good"], "sweep 'good' already exists"),
    ("sweep.run", ["--results-dir", R, "--resume", "--name", "empty-json"], "empty-json/sweep.json is empty or not"),
    ("sweep.run", ["--results-dir", R, "--resume", "--name", "bad-json"], "bad-json/sweep.json is empty or not"),
    ("sweep.run", ["--results-dir", R, "--resume", "--name", "bad-space"], "names the unknown space 'nope'"),
    ("sweep.run", ["--results-dir", R, "--resume", "--name", "bad-trials"], "bad-trials/trials.csv is damaged"),
    ("sweep.run", ["--results-dir", R, "--resume", "--name", "bad-db"], "bad-db/optuna.db is not an Optuna study"),
    ("sweep.run", ["--results-dir", R, "--resume", "--name", "no-json"], "sweep 'no-json' never started"),
    ("sweep.run", ["--results-dir", "{root}/a-file/r"], "--results-dir {root}/a-file/r is not writable"),
    ("sweep.run", ["--results-dir", "/proc/meanflow-test/r"], "--results-dir /proc/meanflow-test/r "),  # a pseudo fs
    ("sweep.run", ["--results-dir", R, "--resume", "--name", "bad-type"], "holds trials='3', which is not an integer"),
    ("sweep.run", ["--results-dir", R, "--resume", "--name", "bad-sampler"], "holds sampler='grid', which is not tpe"),
    ("sweep.run", ["--results-dir", R, "--resume", "--name", "bad-number"], "column final_fid holds 'lots', not a"),
    ("sweep.confirm", ["--results-dir", R, "--name", "bad-plan-type"], "bad-plan-type/confirm.json is damaged"),
    (
        "sweep.confirm",
        ["--results-dir", R, "--name", "bad-plan-objectives"],
        "bad-plan-objectives/confirm.json is damaged",
    ),
    ("sweep.leaderboard", ["--results-dir", "{root}/all-damaged"], "every sweep's trials.csv in {root}/all-damaged"),
    ("sweep.run", ["--results-dir", R, "--address", "127.0.0.1:1"], "--address 127.0.0.1:1: no Ray head answers there"),
    ("sweep.run", ["--results-dir", R, "--address", "nohost"], "--address 'nohost' is not HOST:PORT or auto"),
    ("sweep.run", ["--results-dir", R, "--resume", "maybe", "--name", "good"], "argument --resume: invalid choice"),
    ("sweep.run", ["--results-dir", R, "--resume", "auto"], "--resume auto needs --name, the sweep to continue"),
    ("sweep.run", ["--results-dir", R, "--resume", "auto", "--name", "bad-json"], "bad-json/sweep.json is empty or"),
    # --- python -m sweep.leaderboard / sweep.report / sweep.confirm ---
    ("sweep.leaderboard", ["--results-dir", R, "--top", "0"], "--top 0 must be at least 1"),
    ("sweep.leaderboard", ["--results-dir", "{root}/none"], "no sweep results in {root}/none"),
    ("sweep.leaderboard", ["--results-dir", R, "--space", "nope"], "no completed trials of space 'nope'"),
    ("sweep.report", ["--results-dir", R, "--name", "nope"], "no sweep nope with results in"),
    ("sweep.confirm", ["--results-dir", R, "--name", "ghost"], "there is no sweep"),
    ("sweep.confirm", ["--results-dir", R, "--name", "good", "--top", "-1"], "--top -1 must be 0 or more"),
    (
        "sweep.confirm",
        ["--results-dir", R, "--name", "good", "--objectives", "meanflow,nope"],
        "--objectives 'nope' is not a named objective; known: all, pureflow",
    ),
    ("sweep.confirm", ["--results-dir", R, "--name", "good", "--seeds", "1"], "--seeds 1 must be at least 2"),
    ("sweep.confirm", ["--results-dir", R, "--name", "bad-json"], "bad-json/sweep.json is empty or not"),
    # --- python -m sweep.simulate ---
    ("sweep.simulate", ["search", "--strategies", "random,grid", "--out", SIM], "--strategies: grid unknown; choose"),
    ("sweep.simulate", ["search", "--noise", "nan", "--out", SIM], "--noise nan must be a finite number >= 0"),
    ("sweep.simulate", ["search", "--noise", "-1", "--out", SIM], "--noise -1.0 must be a finite number >= 0"),
    ("sweep.simulate", ["search", "--seconds-per-trial", "0", "--out", SIM], "--seconds-per-trial 0.0 must be a"),
    ("sweep.simulate", ["search", "--trial-minutes", "inf", "--out", SIM], "--trial-minutes inf must be a finite"),
    ("sweep.simulate", ["search", "--reps", "0", "--out", SIM], "--reps 0 must be at least 1"),
    ("sweep.simulate", ["search", "--gpus", "-3", "--out", SIM], "--gpus -3 must be at least 1"),
    ("sweep.simulate", ["search", "--asha-trials", "0", "--out", SIM], "--asha-trials 0 must be at least 1"),
    ("sweep.simulate", ["search", "--trials", "1.5", "--out", SIM], "argument --trials: invalid int value: '1.5'"),
    ("sweep.simulate", ["search", "--space", "nope", "--out", SIM], "argument --space: invalid choice: 'nope'"),
    ("sweep.simulate", ["overhead", "--gpus", "8,x", "--out", SIM], "'8,x' is not a comma list of positive integers"),
    ("sweep.simulate", ["overhead", "--trials", "0,100", "--out", SIM], "'0,100' is not a comma list of positive"),
    ("sweep.simulate", ["tables", "--rows", "", "--out", SIM], "'' is not a comma list of positive integers"),
    ("sweep.simulate", ["search", "--out", "{root}/a-file"], "a-file exists and is not an empty folder"),
    ("sweep.simulate", ["tables", "--out", R], "results exists and is not an empty folder; choose a new one"),
    ("sweep.simulate", ["search", "--costs", "{root}/nope.jsonl", "--out", SIM], "cannot read the step-cost table"),
    ("sweep.simulate", ["search", "--landscape", "{root}/nope.csv", "--out", SIM], "--landscape {root}/nope.csv: no"),
    ("sweep.simulate", ["search", "--landscape", "{root}/a-file", "--out", SIM], "is not a landscape table"),
    ("sweep.simulate", ["search", "--space", "full", "--landscape", LANDSCAPE, "--out", SIM], "not of --space full"),
    ("sweep.simulate", ["landscape", "--configs", "1", "--out", SIM], "--configs 1 must be at least 2"),
    ("sweep.simulate", ["landscape", "--seeds", "1", "--out", SIM], "--seeds 1 must be at least 2"),
    ("sweep.simulate", ["landscape", "--evals", "0", "--out", SIM], "--evals 0 must be at least 1 and at most half"),
    ("sweep.simulate", ["landscape", "--out", "{root}/a-file"], "a-file is a file; give a folder"),
    ("sweep.simulate", ["landscape", "--out", R], "holds other files and no landscape"),
    ("sweep.simulate", ["search", "--costs", NPZ, "--out", SIM], "has no fused train_step record of target 'pureflow'"),
    ("sweep.simulate", ["search", "--costs", FM, "--out", SIM], "the step-cost table has no measurement for target(s)"),
]
MODULES = {"trainer": "trainer.__main__", "sweep.simulate": "sweep.simulate.__main__"}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return make_scratch(tmp_path_factory.mktemp("scratch"))


def run_cli(module: str, argv: list[str], capsys) -> tuple[int, str]:
    main = importlib.import_module(MODULES.get(module, module)).main
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's errors
        code = e.code
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize("module, argv, message", CASES, ids=[f"{m}:{' '.join(a)}" for m, a, _ in CASES])
def test_bad_input_is_one_sentence_exit_2_and_nothing_written(scratch, capsys, module, argv, message):
    root = str(scratch)
    argv = [a.format(root=root) for a in argv]
    before = snapshot(scratch)
    code, out = run_cli(module, argv, capsys)
    assert code == 2, out
    assert message.format(root=root) in out, out
    assert "Traceback" not in out
    assert len([ln for ln in out.splitlines() if ln.startswith(("error:", "python -m"))]) == 1, out
    assert snapshot(scratch) == before  # nothing created, changed or removed


@pytest.mark.parametrize("module", ["sweep.run", "sweep.confirm"])
@pytest.mark.parametrize("grace", ["abc", "nan", "0", "-5", "1e9"])
def test_a_bad_stop_grace_is_refused_before_anything_starts(scratch, capsys, monkeypatch, module, grace):
    monkeypatch.setenv("MEANFLOW_STOP_GRACE_S", grace)
    before = snapshot(scratch)
    code, out = run_cli(module, ["--results-dir", f"{scratch}/results", "--name", "good"], capsys)
    assert (
        code == 2 and out.strip() == f"error: MEANFLOW_STOP_GRACE_S={grace!r} must be a number of seconds in (0, 3600)"
    )
    assert snapshot(scratch) == before


def test_there_are_at_least_forty_cases():
    assert len(CASES) >= 40 and {m for m, _, _ in CASES} >= {"trainer", "trainer.fid", "trainer.bench", "sweep.run"}


# ------------------------------------------------------------------ one test per class of damage
def test_a_damaged_trials_table_is_refused_and_never_rewritten_with_fewer_rows(tmp_path):
    from sweep.tables import DamagedTable, SweepTable

    folder = tmp_path / "s"
    folder.mkdir()
    csv = folder / "trials.csv"
    csv.write_text("trial_id,status,final_fid\na,completed,1.0\nb,completed,2.0\nc,compl")  # cut mid-row
    table = SweepTable(tmp_path, "s", "baselines")
    with pytest.raises(DamagedTable, match=r"trials.csv is damaged .* it will not be rewritten"):
        table.load()
    good = SweepTable(tmp_path, "s", "baselines")
    csv.write_text("trial_id,status,final_fid\na,completed,1.0\nb,completed,2.0\n")
    good.load()
    good.rows.pop("b")  # a bug that lost a row must not reach the disk
    with pytest.raises(DamagedTable, match="refusing to rewrite .* with 1 of its 2 rows"):
        good.save()
    assert csv.read_text().count("completed") == 2


def test_one_broken_sweep_does_not_break_its_neighbours(tmp_path, capsys):
    from sweep.leaderboard import main as board_main
    from sweep.tables import SweepTable, merged_board

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "trials.csv").write_bytes(b"\x00\x01garbage,,\n\xff")
    table = SweepTable(tmp_path, "fine", "baselines")
    row = {"status": "completed", "final_fid": 3.0, "fid_kind": "k", "config_hash": "h", "config.seed": 0}
    table.update("t1", **row, finished_at="2026-11-28T00:00:00+00:00")
    table.save()  # the merged board is rebuilt around the broken sweep
    board = merged_board(tmp_path)
    assert list(board["trial_id"]) == ["t1"]
    assert f"skipping {broken / 'trials.csv'}" in capsys.readouterr().err
    before = snapshot(tmp_path)
    assert board_main(["--results-dir", str(tmp_path)]) == 0  # read-only: prints, writes nothing
    assert snapshot(tmp_path) == before
    out = capsys.readouterr()
    assert "t1" in out.out and "skipping" in out.err


def test_result_files_respect_the_umask(tmp_path):
    from trainer.runtime import atomic_write_json

    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "a.json", {"x": 1})
        assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        atomic_write_json(tmp_path / "b.json", {"x": 1})
        assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_an_archive_alone_is_extracted_offline(tmp_path, monkeypatch):
    """MEANFLOW_OFFLINE=1 and only cifar-10-python.tar.gz: extracting is not downloading."""
    import io
    import pickle
    import tarfile

    import numpy as np
    from torchvision.datasets import CIFAR10

    from trainer.data import DataError, extract_offline

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]})
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(DataError, match="is damaged .*MD5"):  # not torchvision's archive: refused, not unpacked
        extract_offline(str(tmp_path))
    assert not (tmp_path / "cifar-10-batches-py").exists()
    import hashlib

    monkeypatch.setattr(CIFAR10, "tgz_md5", hashlib.md5(archive.read_bytes()).hexdigest())
    extract_offline(str(tmp_path))
    assert (tmp_path / "cifar-10-batches-py" / "data_batch_1").is_file()


def test_ctrl_c_is_one_line_and_exit_130(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainer", "--steps", "100000", "--out-dir", str(tmp_path / "o")],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 60
    first = proc.stdout.readline()  # the model line: training has begun
    assert first.startswith("SmallDiT") and time.time() < deadline
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip() == "interrupted (Ctrl-C)"
