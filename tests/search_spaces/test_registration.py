"""Adding a target or a schedule is one registration: every space and --describe pick it up, no other file edited."""

import optuna
import pytest
import torch

from search_spaces import SPACES
from trainer.config import from_flat
from trainer.objectives import TARGETS, target
from trainer.objectives.schedules import SCHEDULES, VALUE, schedule

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def probes():
    @target("probe_alpha", uses_alpha=True, source="a test")
    @torch.no_grad()
    def probe_alpha(net, x_t, t, t_next, dt, velocity, device):
        """A test target that reads dt."""
        return velocity.clone()

    @target("probe_plain", uses_alpha=False, source="a test")
    @torch.no_grad()
    def probe_plain(net, x_t, t, t_next, dt, velocity, device):
        """A test target that ignores dt."""
        return velocity.clone()

    @schedule("probe_ramp", ranges={"top": VALUE, "bend": (1.0, 3.0)})
    def probe_ramp(progress, top=1.0, bend=2.0):
        """f(p) = top * p^bend."""
        return top * progress**bend

    yield
    for name in ("probe_alpha", "probe_plain"):
        TARGETS.pop(name)
    SCHEDULES.pop("probe_ramp")


def _trials(space: str, n: int = 300):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(n):
        trial = study.ask()
        fixed = SPACES[space].define(trial)
        from_flat({"preset": "smoke", **trial.params, **fixed})  # every suggestion is a valid config
        study.tell(trial, 1.0)
        yield trial.params, fixed


@pytest.mark.parametrize("space", ["target_variants", "full"])
def test_a_registered_target_is_searched_with_alpha_only_when_it_uses_alpha(probes, space):
    seen = {}
    for params, fixed in _trials(space):
        if params["target"] in ("probe_alpha", "probe_plain"):
            seen.setdefault(params["target"], (params, fixed))
    assert set(seen) == {"probe_alpha", "probe_plain"}
    params, fixed = seen["probe_alpha"]
    assert any(k.startswith("alpha.") for k in params) and "discrete_weight" in params
    params, fixed = seen["probe_plain"]
    assert not any(k.startswith("alpha.") for k in params)
    assert fixed["alpha.schedule"] == "constant" and fixed["alpha.value"] == 0.0


@pytest.mark.parametrize("space", ["alpha_schedules", "ratio_fm_schedules", "full"])
def test_a_registered_schedule_is_searched_in_every_space(probes, space):
    found = [p for p, _ in _trials(space, 200) if "probe_ramp" in (p.get("alpha.schedule"), p.get("ratio_fm.schedule"))]
    assert found
    prefix = "alpha" if found[0].get("alpha.schedule") == "probe_ramp" else "ratio_fm"
    assert 1.0 <= found[0][f"{prefix}.bend"] <= 3.0  # its own range, from its record


def test_describe_lists_a_registered_target(probes):
    from trainer.__main__ import describe

    text = describe()
    assert "probe_alpha" in text and "A test target that reads dt." in text and "probe_ramp" in text
