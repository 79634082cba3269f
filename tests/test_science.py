"""The science end to end, on a reduced form of the ``cpu`` preset: MeanFlow beats plain flow matching at one
sampler step by the project's own paired comparison (``sweep.stats.paired_test``, seed by seed), and two real
faults each take that margin away: a flipped sign in MeanFlow's target, and a sampler that swaps t and r.

At 300 steps on this 2-core machine the paired difference at 1 NFE was -0.48 (std 0.08 over 3 seeds); with the
flipped sign +0.11, with the swapped sampler +0.21 (docs/cpu-reference.md)."""

import contextlib

from sweep.stats import paired_test
from trainer.config import from_flat
from trainer.trial import Trial

SEEDS = (0, 1, 2)
SMALL = {"preset": "cpu", "steps": 300, "eval_every": 0, "fid_nfe": ()}  # the cpu preset, shortened for the suite


def trained(objective: str) -> list[Trial]:
    """One trained trial per seed (scored later, so a faulty sampler can score the same networks)."""
    out = []
    for seed in SEEDS:
        trial = Trial(from_flat({**SMALL, "objective": objective, "seed": seed}))
        trial.run_training()
        out.append(trial)
    return out


def one_step(trials: list[Trial]) -> list[float]:
    return [t.score(t.cfg.fid_samples, sample_steps=1).fid for t in trials]


def beats(a: list[float], b: list[float]) -> bool:
    """Whether ``a`` has the lower FID with the whole 95% interval of the paired difference below zero."""
    return paired_test(a, b).diff.high < 0


def test_meanflow_beats_flow_matching_at_one_step_and_each_fault_loses_the_margin(monkeypatch):
    import trainer.objectives.targets as targets
    import trainer.sampler as sampler

    with contextlib.ExitStack() as stack:
        pure, mean = trained("pureflow"), trained("meanflow")
        for t in pure + mean:
            stack.callback(t.scorer.close)
        good = paired_test(one_step(mean), one_step(pure))
        assert good.diff.high < 0 and good.diff.mean < -3 * good.diff.std, good  # well outside the seed spread

        real = sampler.euler_sample
        with monkeypatch.context() as m:  # the sampler calls u(x, t_next, t)
            m.setattr(sampler, "euler_sample", lambda net, x, steps=10: real(lambda z, t, r: net(z, r, t), x, steps))
            assert not beats(one_step(mean), one_step(pure))

        with monkeypatch.context() as m:  # MeanFlow's target with the sign of its JVP term flipped
            m.setattr(targets, "continuous_target", lambda dudt, t, r, v: v + targets._bcast(t - r) * dudt)
            flipped = trained("meanflow")
        for t in flipped:
            stack.callback(t.scorer.close)
        assert not beats(one_step(flipped), one_step(pure))
