"""A surrogate of a landscape table (``sweep.simulate.landscape``): what ``search --landscape FILE`` searches in
place of the invented surface (``sweep.simulate.surface``), with the same four methods.

- **Mean.** One scikit-learn random forest per evaluation step of the table, fitted to each config's mean
  FID over its seeds at that step. A config is encoded by the space's searched keys: a numeric key as its
  position in its range (log scale where the space has one), -1 where the config's branch lacks it; a
  categorical key one-hot. The forest's prediction at the last step is a config's *true* final FID.
- **Learning curves.** Between the table's steps, linear in the fraction of the run; before its first step,
  the first step's value (no trial is read before it).
- **Seed noise.** At each step, the pooled within-config standard deviation of the table's seeds. A trial's
  seed draws one z; each measurement at fraction f adds ``sd(f) * (rho(f) z + sqrt(1 - rho(f)^2) e)``, with e
  a fresh draw per step and rho(f) the correlation of the table's seed residuals at that step with those at
  the end: a lucky seed stays lucky as far as the table says it does.

Draws are hashed from (repetition, config, seed, step), so strategies of one repetition meet the same noise.
Everything here is ours: a random forest because it takes categorical and absent keys as they are and needs no
kernel choice; ``quality`` reports how well it predicts configs it has not seen.
"""

from __future__ import annotations

import dataclasses
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sweep.simulate.surface import Dim, rng
from sweep.simulate.landscape import FIXED, META

TREES = 300


class LandscapeError(ValueError):
    """A landscape table that cannot be used: one sentence naming the file."""


METRICS = ("fid", "fid_nfe1", "fid_nfe2")  # what a surrogate's final FID is: 10, 1 or 2 sampler steps


def read_table(path: Path, space: str, metric: str = "fid") -> tuple[dict, pd.DataFrame]:
    """The table's ``#`` lines and its rows, checked: every column, numbers where numbers go, the right space,
    two or more seeds per config, a final FID per trial. With ``metric`` fid_nfe1 or fid_nfe2 the last step's
    ``fid`` is that column's (the intermediate FIDs stay the 10-step ones, as a sweep's ASHA sees them)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise LandscapeError(f"--landscape {path}: no such file (make one with python -m sweep.simulate landscape)")
    except (OSError, UnicodeDecodeError) as e:
        raise LandscapeError(f"--landscape {path} cannot be read as text: {e}") from None
    lines = text.splitlines(keepends=True)
    meta = {}
    for line in lines:
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        meta[key] = value.strip()
    missing = [k for k in META if k not in meta]
    if missing:
        raise LandscapeError(
            f"--landscape {path} is not a landscape table: its header lacks {', '.join(missing)} "
            "(python -m sweep.simulate landscape writes it)"
        )
    if meta["space"] != space:
        raise LandscapeError(f"--landscape {path} is a landscape of space {meta['space']!r}, not of --space {space}")
    try:
        frame = pd.read_csv(io.StringIO("".join(lines[len(meta) :])))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        raise LandscapeError(f"--landscape {path} does not parse as a table: {e}") from None
    absent = [c for c in FIXED if c not in frame.columns]
    if absent:
        raise LandscapeError(f"--landscape {path} lacks the column(s) {', '.join(absent)}")
    for col in ("seed", "step", "fid"):
        values = pd.to_numeric(frame[col], errors="coerce")
        if len(frame) == 0 or values.isna().any() or not np.isfinite(values).all():
            raise LandscapeError(f"--landscape {path}: column {col} must hold a finite number on every row")
        frame[col] = values
    last = frame["step"].max()
    if metric != "fid":
        at_end = frame["step"] == last
        values = pd.to_numeric(frame.loc[at_end, metric], errors="coerce")
        if values.isna().any() or not np.isfinite(values).all():
            raise LandscapeError(f"--landscape {path}: column {metric} must hold a finite number on every final row")
        frame.loc[at_end, "fid"] = values
    finals = frame[frame["step"] == last].groupby("config")["seed"].nunique()
    if len(finals) < 3 or finals.min() < 2:
        raise LandscapeError(
            f"--landscape {path} needs 3 or more configs with a final FID on 2 or more seeds each; it has "
            f"{int((finals >= 2).sum())} (truncated, or too few seeds)"
        )
    return meta, frame


@dataclass
class Surrogate:
    dims: tuple[Dim, ...]
    fractions: tuple[float, ...]  # the table's evaluation steps as fractions of its run (the last is 1)
    forests: list = field(repr=False)  # one fitted forest per fraction
    sd: tuple[float, ...]  # the seed noise at each fraction
    rho: tuple[float, ...]  # correlation of seed residuals at each fraction with those at the end
    rep: int = 0  # the repetition: it seeds the noise draws
    _cache: dict = field(default_factory=dict, repr=False)
    facts: dict = field(default_factory=dict, repr=False)  # how it was chosen and how well it predicts

    @property
    def noise(self) -> float:
        return self.sd[-1]

    def encode(self, params: dict) -> np.ndarray:
        return encode(self.dims, [params])[0]

    def means(self, params: dict) -> np.ndarray:
        import json

        key = json.dumps(params, sort_keys=True, default=str)
        if key not in self._cache:
            x = self.encode(params)[None, :]
            self._cache[key] = np.array([float(f.predict(x)[0]) for f in self.forests])
        return self._cache[key]

    def true_fid(self, params: dict) -> float:
        return float(self.means(params)[-1])

    def curve(self, params: dict, frac: float) -> float:
        return float(np.interp(frac, self.fractions, self.means(params)))

    def measured(self, params: dict, seed: int, frac: float, samples_ratio: float = 1.0) -> float:
        """What a trial with ``seed`` measures at ``frac`` of its run (``samples_ratio`` is not used: the table's
        own noise at each step includes its FID's sampling)."""
        import json

        key = json.dumps(params, sort_keys=True, default=str)
        sd = float(np.interp(frac, self.fractions, self.sd))
        rho = float(np.interp(frac, self.fractions, self.rho))
        luck = rng(self.rep, "seed", key, seed).gauss(0, 1)
        fresh = rng(self.rep, "eval", key, seed, round(frac, 6)).gauss(0, 1)
        return self.curve(params, frac) + sd * (rho * luck + math.sqrt(max(1 - rho * rho, 0.0)) * fresh)

    def of_rep(self, rep: int) -> "Surrogate":
        return dataclasses.replace(self, rep=rep)  # the same fitted models, cache and facts


def encode(dims, rows: list[dict]) -> np.ndarray:
    cols = []
    for d in dims:
        values = [r.get(d.key) for r in rows]
        if d.options:
            for option in d.options:
                cols.append([1.0 if _present(v) and _same(v, option) else 0.0 for v in values])
        else:
            cols.append([d.unit(float(v)) if _present(v) else -1.0 for v in values])
    return np.array(cols, dtype=float).T.reshape(len(rows), len(cols))


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value != ""


def _same(value, option) -> bool:
    try:
        return float(value) == float(option)
    except (TypeError, ValueError):
        return str(value) == str(option)


def params_of(frame: pd.DataFrame, dims) -> dict[str, dict]:
    """config id -> its searched keys and values, from the table's ``config.<key>`` columns."""
    out = {}
    for config, rows in frame.groupby("config", sort=True):
        row = rows.iloc[0]
        out[config] = {d.key: row.get(f"config.{d.key}") for d in dims if _present(row.get(f"config.{d.key}"))}
    return out


def per_config(frame: pd.DataFrame) -> tuple[list[int], pd.DataFrame]:
    """The table's steps and each config's mean FID at each (configs x steps, configs sorted)."""
    steps = sorted(int(s) for s in frame["step"].unique())
    means = frame.pivot_table(index="config", columns="step", values="fid", aggfunc="mean").sort_index()
    return steps, means


def pooled_noise(frame: pd.DataFrame, steps: list[int]) -> tuple[list[float], list[float]]:
    """Per step: the pooled within-config SD of the seeds, and the correlation of seed residuals with the last
    step's (1 at the last step)."""
    resid = frame.copy()
    resid["r"] = resid["fid"] - resid.groupby(["config", "step"])["fid"].transform("mean")
    resid["n"] = resid.groupby(["config", "step"])["fid"].transform("size")
    sd, rho = [], []
    wide = resid.pivot_table(index=["config", "seed"], columns="step", values="r", aggfunc="mean")
    for step in steps:
        at = resid[resid["step"] == step]
        dof = float((at.groupby("config")["n"].first() - 1).clip(lower=0).sum())
        sd.append(math.sqrt(float((at["r"] ** 2).sum()) / dof) if dof > 0 else 0.0)
        both = wide[[step, steps[-1]]].dropna()
        ok = len(both) > 2 and both.std().min() > 0
        rho.append(1.0 if step == steps[-1] else float(np.clip(both.corr().iloc[0, 1], 0, 1)) if ok else 0.0)
    return sd, rho


MODELS = ("forest", "gp")


def regressor(kind: str, seed: int):
    """A scikit-learn model of a config's mean FID: a random forest, or a Gaussian process (Matern 5/2 with one
    length scale per feature, plus a white-noise term for what the features do not explain)."""
    if kind == "forest":
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(n_estimators=TREES, min_samples_leaf=2, random_state=seed, n_jobs=1)
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    kernel = ConstantKernel() * Matern(length_scale=1.0, length_scale_bounds=(1e-2, 1e3), nu=2.5) + WhiteKernel()
    return GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=2, random_state=seed)


def fit(frame: pd.DataFrame, dims, seed: int = 0, kind: str = "forest") -> Surrogate:
    steps, means = per_config(frame)
    params = params_of(frame, dims)
    x = encode(dims, [params[c] for c in means.index])
    forests = []
    for step in steps:
        y = means[step].to_numpy()
        known = np.isfinite(y)
        forests.append(regressor(kind, seed).fit(x[known], y[known]))
    sd, rho = pooled_noise(frame, steps)
    fractions = tuple(s / steps[-1] for s in steps)
    return Surrogate(tuple(dims), fractions, forests, tuple(sd), tuple(rho))


def quality(frame: pd.DataFrame, dims, folds: int = 8, seed: int = 0, kind: str = "forest") -> dict:
    """Held-out quality of a final-FID model (``kind``): each config predicted by a model fitted without it
    (``folds`` groups of configs); Spearman and Kendall rank correlations with the configs' measured mean final FID, the
    RMSE, and what the RMSE would be from seed noise alone (the SD of a config's mean over its seeds)."""
    from scipy import stats

    steps, means = per_config(frame)
    order = np.random.default_rng(seed).permutation(len(means))
    fold_of = {means.index[i]: k % folds for k, i in enumerate(order)}
    observed = means[steps[-1]]
    x = encode(dims, [params_of(frame, dims)[c] for c in means.index])
    predicted = {}
    for k in range(folds):
        held = np.array([fold_of[c] == k for c in means.index])
        model = regressor(kind, seed).fit(x[~held], observed.to_numpy()[~held])
        predicted.update(zip(means.index[held], model.predict(x[held])))
    pred = np.array([predicted[c] for c in observed.index])
    obs = observed.to_numpy()
    sd, _ = pooled_noise(frame, steps)
    seeds = frame[frame["step"] == steps[-1]].groupby("config")["seed"].nunique()
    return {
        "configs": len(obs),
        "spearman": float(stats.spearmanr(pred, obs).statistic),
        "kendall": float(stats.kendalltau(pred, obs).statistic),
        "rmse": float(np.sqrt(np.mean((pred - obs) ** 2))),
        "noise_of_mean": float(sd[-1] / math.sqrt(float(seeds.mean()))),
        "seed_sd": float(sd[-1]),
        "spread": float(obs.std()),
    }


def best_of(surrogate: Surrogate, space, frame: pd.DataFrame, draws: int = 4000) -> tuple[float, dict]:
    """The landscape's best: the lowest true final FID over the table's configs and ``draws`` random configs of
    the space (an estimate of the minimum over the whole space; the forest is flat between its leaves)."""
    from sweep.simulate.surface import dims_of

    _, drawn = dims_of(space, probes=draws, seed=1)
    keys = {d.key for d in surrogate.dims}
    candidates = list(params_of(frame, surrogate.dims).values()) + [
        {k: v for k, v in p.items() if k in keys} for p in drawn
    ]
    x = encode(surrogate.dims, candidates)
    values = surrogate.forests[-1].predict(x)
    i = int(np.argmin(values))
    return float(values[i]), candidates[i]
