import torch

from tests.helpers import Constant, ExactMeanVelocity, randomized_dit
from trainer.model import MODEL_SIZES, SmallDiT
from trainer.sampler import euler_sample, noise_for, sample_images, to_uint8


def test_default_model_is_the_protocol_size():
    net = SmallDiT()
    cfg = net.config
    assert (cfg.hidden, cfg.depth, cfg.heads, cfg.patch) == (512, 8, 8, 2)
    assert 39e6 <= net.num_params() <= 41e6
    assert MODEL_SIZES["seed"] == cfg


def test_forward_shape_and_adaln_zero_start():
    net = SmallDiT(MODEL_SIZES["tiny"])
    x = torch.randn(3, 3, 32, 32)
    out = net(x, torch.rand(3), torch.rand(3) * 0.1)
    assert out.shape == x.shape
    assert torch.count_nonzero(out) == 0  # adaLN-Zero: the untrained net predicts zero velocity


def test_math_and_fused_attention_agree():
    net = randomized_dit(torch.float32, patch=4)
    x, t = torch.randn(2, 3, 32, 32), torch.rand(2)
    a = net.set_attention("math")(x, t, t * 0.5)
    b = net.set_attention("fused")(x, t, t * 0.5)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_both_times_matter():
    net = randomized_dit()
    x, t = torch.randn(2, 3, 32, 32, dtype=torch.float64), torch.full((2,), 0.8, dtype=torch.float64)
    assert not torch.allclose(net(x, t, t * 0.5), net(x, t, t * 0.2))


def test_euler_is_exact_on_a_constant_velocity_field():
    c = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    noise = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    for steps in (1, 3, 10):
        torch.testing.assert_close(euler_sample(Constant(c), noise, steps), noise - c, rtol=0, atol=1e-12)


def test_euler_reaches_the_data_point_with_the_exact_mean_velocity():
    a = torch.rand(1, 3, 32, 32, dtype=torch.float64) * 2 - 1
    noise = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    for steps in (1, 10):
        torch.testing.assert_close(
            euler_sample(ExactMeanVelocity(a), noise, steps), a.expand(2, -1, -1, -1), rtol=0, atol=1e-12
        )


def test_sample_images_is_seeded_uint8_and_independent_of_batch_size():
    net = Constant(torch.zeros(1, 3, 32, 32))
    a = sample_images(net, 700, seed=3, steps=2, batch_size=700)
    b = sample_images(net, 700, seed=3, steps=2, batch_size=256)
    assert a.dtype == torch.uint8 and a.shape == (700, 3, 32, 32)
    assert torch.equal(a, b)
    assert not torch.equal(a, sample_images(net, 700, seed=4, steps=2))
    torch.testing.assert_close(noise_for(3, 600, 50), noise_for(3, 0, 700)[600:650])


def test_to_uint8_rounds_and_clips():
    x = torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0])
    assert to_uint8(x).tolist() == [0, 0, 128, 255, 255]
