"""meanflow-sweep's shared trainer: one trial of one objective, importable without Ray.

from trainer import train
result = train({"objective": "meanflow", "preset": "smoke"})
"""

from trainer.config import PRESETS, TrainConfig, from_flat


def train(config, report=None, images=None):
    """Runs one trial: see ``trainer.trial.train`` (imported lazily: the config layer needs no torch model)."""
    from trainer.trial import train as _train

    return _train(config, report=report, images=images)


__all__ = ["PRESETS", "TrainConfig", "from_flat", "train"]
