"""meanflow-sweep's shared trainer: one trial of one objective, importable without Ray.

from trainer import train
result = train({"objective": "meanflow", "preset": "smoke"})

The config layer (and with it torch) loads on first use of a name below: a process that reads only
``trainer.result`` (a simulated trial, a table reader) never imports torch.
"""

_CONFIG_NAMES = ("PRESETS", "TrainConfig", "from_flat")


def train(config, report=None, images=None):
    """Runs one trial: see ``trainer.trial.train`` (imported lazily: the config layer needs no torch model)."""
    from trainer.trial import train as _train

    return _train(config, report=report, images=images)


def __getattr__(name: str):
    if name in _CONFIG_NAMES:
        import trainer.config

        return getattr(trainer.config, name)
    raise AttributeError(f"module 'trainer' has no attribute {name!r}")


__all__ = ["PRESETS", "TrainConfig", "from_flat", "train"]
