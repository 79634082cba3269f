"""A sweep's trial configs, each built once: the sweep's base settings plus a trial's flat keys."""

from __future__ import annotations

import json


class Configs:
    """``of(params)`` -> the trial's ``TrainConfig`` (built on first use, then kept; a bad config raises
    ValueError every time it is asked for)."""

    def __init__(self, base: dict):
        self.base, self._built = dict(base), {}

    def of(self, params: dict):
        from trainer.config import from_flat

        key = json.dumps(params, sort_keys=True, default=str)
        if key not in self._built:
            try:
                self._built[key] = from_flat({**self.base, **params})
            except ValueError as e:
                self._built[key] = e
        built = self._built[key]
        if isinstance(built, ValueError):
            raise ValueError(str(built))
        return built

    def hash_of(self, params: dict) -> str:
        return self.of(params).config_hash()
