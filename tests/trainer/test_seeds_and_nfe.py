"""Seeds are data (they change the FID, not the config hash); few-step FIDs of the same network."""

import torch

from trainer import train
from trainer.config import from_flat
from trainer.sampler import euler_sample

SMOKE = {"preset": "smoke", "steps": 12, "eval_every": 0, "fid_samples": 64}


def test_seeds_change_a_trials_fid_but_not_its_config_hash():
    a, b = train({**SMOKE, "seed": 0}), train({**SMOKE, "seed": 1})
    assert a.config_hash == b.config_hash
    assert a.final_fid != b.final_fid
    assert a.step_ms > 0 and a.train_seconds > 0 and a.fid_seconds > 0


def test_fid_nfe_scores_the_same_network_at_several_step_counts():
    res = train({**SMOKE, "fid_nfe": "1,10"})
    assert res.final_fid_nfe[10] == res.final_fid  # the protocol's 10 steps: the main score itself
    assert res.fid_kind_nfe[1].endswith("/euler1") and res.fid_kind_nfe[10] == res.fid_kind
    assert res.final_fid_nfe[1] != res.final_fid
    assert from_flat({"fid_nfe": [10, 1, 1]}).fid_nfe == (1, 10)
    assert from_flat({"fid_nfe": 2}).config_hash() == from_flat({}).config_hash()  # more scores, same network


def test_one_step_sampling_is_one_network_call_per_image():
    calls = []

    class Count(torch.nn.Module):
        def forward(self, x, t, t_next):
            calls.append((x.shape[0], float(t[0]), float(t_next[0])))
            return torch.zeros_like(x)

    euler_sample(Count(), torch.randn(6, 3, 32, 32), steps=1)
    assert calls == [(6, 1.0, 0.0)]  # one call for the batch: one per image, over the whole interval [0, 1]
