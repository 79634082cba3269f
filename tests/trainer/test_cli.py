"""The single-trial CLI: describe, a smoke run, and one-line usage errors."""

import json
import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "trainer", *args], capture_output=True, text=True, timeout=300)


def test_describe_prints_model_size_and_registries():
    out = run("--describe")
    assert out.returncode == 0
    assert "39,136,780 parameters" in out.stdout and "targets:" in out.stdout and "sigmoid" in out.stdout


def test_smoke_trial_writes_result_json(tmp_path):
    out = run(
        "--objective",
        "meanflow",
        "--steps",
        "20",
        "--out-dir",
        str(tmp_path),
        "--set",
        "fid_samples=64",
        "--set",
        "eval_every=10",
        "--set",
        "eval_samples=32",
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["fid_kind"] == "standin/synthetic/64/euler10"
    assert json.loads((tmp_path / "result.json").read_text())["config"]["steps"] == 20


def test_usage_errors_are_one_line_with_exit_2(tmp_path):
    cases = [
        (["--objective", "nope"], "invalid choice: 'nope'"),
        (["--set", "alpha.eta=0.9", "--set", "alpha.schedule=sigmoid"], "eta=0.9 is outside (0, 0.5)"),
        (["--set", "steps"], "is not KEY=VALUE"),
        (["--preset", "seed", "--data-dir", str(tmp_path)], f"CIFAR-10 is not in {tmp_path}"),
    ]
    for args, message in cases:
        out = run(*args, "--out-dir", str(tmp_path / "out"))
        assert out.returncode == 2 and message in out.stderr, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()
