import torch

from trainer.objectives import TimeSpec, adaptive_weight, discrete_row_weight, sample_times


def test_time_pairs_are_ordered_with_exact_flow_matching_share():
    g = torch.Generator().manual_seed(0)
    t, t_next = sample_times(128, 0.75, g, "cpu", TimeSpec())
    assert t.shape == t_next.shape == (128,)
    assert bool((t_next <= t).all()) and bool((t > 0).all()) and bool((t < 1).all())
    assert int((t_next == t).sum()) == 96


def test_logit_normal_location():
    g = torch.Generator().manual_seed(0)
    t, t_next = sample_times(200_000, 0.0, g, "cpu", TimeSpec(mean=-0.4, std=1.0))
    both = torch.cat([t, t_next])
    logits = torch.log(both / (1 - both))
    assert abs(float(logits.mean()) + 0.4) < 0.01 and abs(float(logits.std()) - 1.0) < 0.01


def test_adaptive_weight_and_discrete_weight():
    err = torch.tensor([0.0, 1.0, 3.0], requires_grad=True)
    w = adaptive_weight(err, p=1.0, eps=1e-3)
    torch.testing.assert_close(w, 1 / (err.detach() + 1e-3))
    assert not w.requires_grad
    torch.testing.assert_close(adaptive_weight(err, 0.0, 1e-3), torch.ones(3))
    dt, alpha = torch.tensor([0.0, 0.2]), torch.tensor(0.25)
    assert discrete_row_weight(dt, alpha, "inv_alpha").tolist() == [1.0, 4.0]
    assert discrete_row_weight(dt, alpha, "alpha").tolist() == [1.0, 0.25]
    assert discrete_row_weight(dt, alpha, "none").tolist() == [1.0, 1.0]
