"""The single-trial CLI: describe, a smoke run, and one-line usage errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest


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


@pytest.mark.parametrize("handled", [True, False])
def test_ctrl_c_inside_an_exec_exits_130_only_under_ctrl_c_handled(tmp_path, handled):
    """CPython marks a plain KeyboardInterrupt that unwinds through exec() as unhandled and, at the exit of a
    ``python -m`` run, kills itself by SIGINT (-2) although the interrupt was caught and 130 returned. Lazy
    imports exec strings, so a Ctrl-C early in a trial hit this. ``ctrl_c_handled`` raises a subclass."""
    guard = "ctrl_c_handled()" if handled else "contextlib.nullcontext()"
    (tmp_path / "ctrl_c_probe.py").write_text(
        "import contextlib, sys\n"
        "from trainer.cli import ctrl_c_handled, interrupted\n"
        "def main():\n"
        "    try:\n"
        f"        with {guard}:\n"
        '            exec("import os, signal, time; os.kill(os.getpid(), signal.SIGINT); time.sleep(30)")\n'
        "    except KeyboardInterrupt:\n"
        "        return interrupted()\n"
        "sys.exit(main())\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run(
        [sys.executable, "-m", "ctrl_c_probe"],
        cwd=tmp_path,
        env={"PYTHONPATH": root},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stderr.strip().endswith("interrupted (Ctrl-C)")
    # the unguarded run shows the probe springs the trap (if a CPython release removes it, drop that case)
    assert proc.returncode == (130 if handled else -2)
