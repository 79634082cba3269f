"""Compiled graphs kept across trials (trainer/compile_cache.py): on the node's disk, and handed between nodes."""

import json
import socket
import subprocess
import sys
from pathlib import Path

from trainer.compile_cache import CompileCache, cache_root, graph_key
from trainer.config import from_flat

ROOT = Path(__file__).resolve().parents[2]
TRIAL = """
import json, sys
import torch
from trainer import train
from torch._dynamo.utils import counters
train({"preset": "smoke", "steps": 4, "eval_every": 0, "fid_samples": 16, "compile": True,
       "compile_cache": sys.argv[1]})
inductor = counters["inductor"]
print(json.dumps({"hits": inductor["fxgraph_cache_hit"], "misses": inductor["fxgraph_cache_miss"]}))
"""


def run_trial(cache) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", TRIAL, str(cache)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_trial_keeps_its_graphs_on_the_node_and_a_new_node_gets_them_handed(tmp_path):
    cache = tmp_path / "cc"
    first = run_trial(cache)
    node = cache / socket.gethostname() / "inductor"
    assert first["misses"] > 0 and any(node.rglob("*")), first  # compiled, and kept on the node
    (mega,) = (cache / "mega").glob("*.bin")  # the trial's artifacts, for other nodes
    subprocess.run(["rm", "-rf", str(cache / socket.gethostname())], check=True)  # a new node: nothing local
    handed = run_trial(cache)
    assert handed["hits"] > 0 and handed["misses"] == 0, handed  # every graph came with the artifacts
    assert mega.is_file()


def test_a_damaged_artifact_file_or_an_unwritable_root_is_a_cache_miss_not_a_failure(tmp_path, monkeypatch):
    cfg = from_flat({"preset": "smoke", "compile": True})
    key = graph_key(cfg, "cpu")
    (tmp_path / "mega").mkdir()
    (tmp_path / "mega" / f"{key}.bin").write_bytes(b"not torch artifacts")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "before"))
    cache = CompileCache(tmp_path, key)
    assert not cache.loaded and "not loaded" in cache.warning
    blocked = tmp_path / "file"
    blocked.write_text("")
    cache = CompileCache(blocked, key)  # the root is a file: no folder can be made under it
    assert "not usable" in cache.warning
    cache.save()  # nothing to do, nothing raised
    assert cache_root(str(tmp_path)) == tmp_path
    monkeypatch.setenv("MEANFLOW_COMPILE_CACHE", str(tmp_path / "env"))
    assert cache_root("") == tmp_path / "env"
