"""One direction of flow: the trainer runs without Ray, Optuna or the sweep (as on a bare GPU node)."""

import subprocess
import sys

CODE = """
import sys
for name in ("ray", "optuna", "sweep", "search_spaces", "pandas", "matplotlib", "cleanfid"):
    sys.modules[name] = None  # importing any of them now raises ImportError
import trainer.trial, trainer.bench, trainer.fid, trainer.__main__
print("ok")
"""


def test_trainer_imports_without_ray_optuna_sweep_or_clean_fid():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
