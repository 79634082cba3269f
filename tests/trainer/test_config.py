import pytest

from trainer.config import from_flat
from trainer.objectives import ScheduleSpec


def test_preset_and_objective_expand_and_keys_override():
    cfg = from_flat({"preset": "seed", "objective": "alphaflow", "alpha.gamma": 10.0, "steps": 5})
    assert (cfg.model, cfg.dataset, cfg.batch_size, cfg.fid_samples) == ("seed", "cifar10", 128, 50_000)
    assert cfg.steps == 5 and cfg.target == "alphaflow"
    assert cfg.alpha == ScheduleSpec("sigmoid", {"start": 1.0, "end": 0.0, "gamma": 10.0, "eta": 0.005})


def test_swapping_the_schedule_family_drops_the_objectives_parameters():
    cfg = from_flat({"objective": "meanflow", "alpha.schedule": "linear", "alpha.start": 0.5})
    assert cfg.alpha == ScheduleSpec("linear", {"start": 0.5})
    same = from_flat({"objective": "alphaflow", "alpha.schedule": "sigmoid", "alpha.gamma": 5.0})
    assert same.alpha.params["eta"] == 0.005 and same.alpha.params["gamma"] == 5.0  # same family: params kept


def test_flat_round_trip_and_hash():
    cfg = from_flat({"objective": "meanflow"})
    again = from_flat(cfg.to_flat())
    assert again == cfg and again.config_hash() == cfg.config_hash()
    # seeds are data: one config on several seeds groups by its hash (issue: answers you can trust)
    assert from_flat({"objective": "meanflow", "seed": 1}).config_hash() == cfg.config_hash()
    assert from_flat({"objective": "meanflow", "lr": 5e-4}).config_hash() != cfg.config_hash()
    assert from_flat({"objective": "meanflow", "out_dir": "/elsewhere"}).config_hash() == cfg.config_hash()


def test_unknown_key_lists_known_keys():
    with pytest.raises(ValueError, match=r"unknown config key 'learning_rate'; known keys: .*\blr\b"):
        from_flat({"learning_rate": 1e-3})


@pytest.mark.parametrize(
    "flat, message",
    [
        ({"preset": "huge"}, "unknown preset 'huge'; choose one of: seed, smoke"),
        ({"objective": "flowmap"}, "unknown objective 'flowmap'; choose one of: pureflow, meanflow, alphaflow"),
        ({"fid_nfe": "1,x"}, r"fid_nfe='1,x' must be step counts from 1 to 1000"),
        ({"fid_nfe": 0}, "fid_nfe=0 must be step counts"),
        ({"target": "x"}, "unknown target 'x'"),
        ({"steps": -3}, "steps=-3 must be a positive integer"),
        ({"ratio_fm.value": 1.5}, r"ratio_fm schedule .* reaches 1.5"),
        ({"alpha.schedule": "sigmoid", "alpha.eta": 0.6}, r"eta=0.6 is outside \(0, 0.5\)"),
        ({"alpha.schedule": "linear", "alpha.slope": 1}, "has no parameter 'slope'"),
        ({"dataset": "imagenet"}, "unknown dataset 'imagenet'"),
    ],
)
def test_bad_values_give_one_clear_sentence(flat, message):
    with pytest.raises(ValueError, match=message):
        from_flat(flat)
