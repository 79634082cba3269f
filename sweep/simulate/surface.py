"""The simulated objective: a response surface over a space's searched keys, learning curves, seed noise.

Everything here is ours (no paper gives these objectives' FID as a function of their settings), stated
so that a reader can judge what the simulation can and cannot say:

- **Final FID.** ``best + (worst - best) * B(params)``, with B in [0, 1] a weighted sum over the searched
  keys. best 38.0 lies a little under MeanFlow's 41.81 (the question is whether anything beats it); worst
  86.21 is plain flow matching's (the protocol's known range). Each key's weight is exp(1.5 z), z standard
  normal, normalised to sum 1: a few keys matter, most little, as in real sweeps.
- **A numeric key** (position u in [0, 1] of its range, on a log scale where the space says so)
  adds ((u - u*) / max(u*, 1 - u*))^2, from 0 at its optimum u* to 1 at the far end. u* is drawn in
  [0.15, 0.85] and moved by up to 0.25 with the value of the heaviest categorical key (a schedule family, a
  target): the best alpha depends on the target, as in the real objectives. This is the only interaction.
- **A categorical key**: one option adds 0, the others a level drawn in [0.15, 1].
- **A key a config lacks** (another branch of a conditional space) adds 0.25.
- **Learning curves.** At a fraction f of the run a trial's FID is ``final * (1 + gain * (f^-r - 1))``:
  equal to the final FID at f = 1, higher before. The rate r in [0.3, 0.8] is a second surface of the same
  form (its own draws): some good configs start slowly, so an early ranking is informative, not exact.
- **Noise.** A trial's seed moves its final FID by N(0, noise), the same at every step (the trained
  network's luck); an FID on fewer samples adds N(0, noise * sqrt(fid_samples / samples - 1)).

Every draw comes from a hash of (surface seed, what is drawn): a repetition with another seed is another
landscape, and the same config, seed and step always measure the same value. Pure Python: simulated trials
import this and never load torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
from dataclasses import dataclass

BEST, WORST = 38.0, 86.21
ABSENT = 0.25  # what a key a config lacks adds (a share of its weight)
RATES = (0.3, 0.8)


def rng(*parts) -> random.Random:
    """A generator seeded by a hash of ``parts`` (stable across processes and Python versions)."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass(frozen=True)
class Dim:
    """One searched key: a numeric range (``lo``, ``hi``, ``log``) or a categorical key's ``options``."""

    key: str
    lo: float = 0.0
    hi: float = 1.0
    log: bool = False
    options: tuple = ()

    def unit(self, value: float) -> float:
        """Where ``value`` lies in the range, in [0, 1]."""
        if self.hi <= self.lo:
            return 0.5
        if self.log:
            lo, hi, value = math.log(self.lo), math.log(self.hi), math.log(max(value, self.lo))
        else:
            lo, hi = self.lo, self.hi
        return min(1.0, max(0.0, (value - lo) / (hi - lo)))


@dataclass(frozen=True)
class Surface:
    dims: tuple[Dim, ...]
    seed: int = 0
    noise: float = 0.5  # SD of a trial's seed effect on its final FID
    gain: float = 0.5  # the learning curve's height: FID at f is final * (1 + gain * (f^-r - 1))
    best: float = BEST
    worst: float = WORST

    def of_rep(self, rep: int) -> "Surface":
        """Repetition ``rep``'s landscape: every draw seeded anew."""
        return dataclasses.replace(self, seed=rep)

    def weights(self, tag: str) -> dict[str, float]:
        raw = {d.key: math.exp(1.5 * rng(self.seed, tag, d.key, "w").gauss(0, 1)) for d in self.dims}
        total = sum(raw.values()) or 1.0
        return {k: w / total for k, w in raw.items()}

    def badness(self, params: dict, tag: str) -> float:
        """B(params) in [0, 1] for surface ``tag`` ("fid" or "rate")."""
        w = self.weights(tag)
        cats = [d for d in self.dims if d.options]
        pivot = max(cats, key=lambda d: w[d.key]).key if cats else None
        pivot_value = params.get(pivot) if pivot else None
        out = 0.0
        for d in self.dims:
            value = params.get(d.key)
            if value is None:
                q = ABSENT
            elif d.options:
                first = rng(self.seed, tag, d.key, "first").choice(sorted(map(str, d.options)))
                q = 0.0 if str(value) == first else rng(self.seed, tag, d.key, str(value)).uniform(0.15, 1.0)
            else:
                base = rng(self.seed, tag, d.key, "opt").uniform(0.15, 0.85)
                shift = rng(self.seed, tag, d.key, "shift", str(pivot_value)).uniform(-0.25, 0.25)
                opt = min(0.95, max(0.05, base + shift))
                q = ((d.unit(float(value)) - opt) / max(opt, 1 - opt)) ** 2
            out += w[d.key] * q
        return min(1.0, max(0.0, out))

    def true_fid(self, params: dict) -> float:
        """The config's final FID without noise: what the search is after."""
        return self.best + (self.worst - self.best) * self.badness(params, "fid")

    def rate(self, params: dict) -> float:
        return RATES[0] + (RATES[1] - RATES[0]) * self.badness(params, "rate")

    def curve(self, params: dict, frac: float) -> float:
        """The noiseless FID after a fraction ``frac`` in (0, 1] of the run."""
        return self.true_fid(params) * (1 + self.gain * (frac ** -self.rate(params) - 1))

    def measured(self, params: dict, seed: int, frac: float, samples_ratio: float = 1.0) -> float:
        """What a trial with ``seed`` measures at ``frac`` of its run, on ``samples_ratio`` = fid_samples / samples
        (1 for the final FID)."""
        key = json.dumps(params, sort_keys=True, default=str)
        luck = rng(self.seed, "seed", key, seed).gauss(0, self.noise)
        sampling = rng(self.seed, "eval", key, seed, round(frac, 6)).gauss(0, 1)
        return self.curve(params, frac) + luck + self.noise * math.sqrt(max(samples_ratio - 1, 0.0)) * sampling


def dims_of(space, probes: int = 400, seed: int = 0) -> tuple[tuple[Dim, ...], list[dict]]:
    """The keys a space searches and their ranges, found by asking Optuna ``probes`` random trials of it (a
    conditional space shows each branch's keys; a key seen with two ranges gets their union), and the
    configs drawn (searched and fixed keys)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    seen: dict[str, Dim] = {}
    drawn = []
    for _ in range(probes):
        trial = study.ask()
        fixed = space.define(trial) or {}
        for key, dist in trial.distributions.items():
            seen[key] = _merged(seen.get(key), key, dist)
        drawn.append({**fixed, **trial.params})
        study.tell(trial, 0.0)
    return tuple(seen[k] for k in sorted(seen)), drawn


def _merged(old: Dim | None, key: str, dist) -> Dim:
    if hasattr(dist, "choices"):
        options = tuple(dict.fromkeys((*(old.options if old else ()), *dist.choices)))
        return Dim(key, options=options)
    lo, hi = float(dist.low), float(dist.high)
    if old is not None and not old.options:
        lo, hi = min(lo, old.lo), max(hi, old.hi)
    return Dim(key, lo, hi, bool(getattr(dist, "log", False)))
