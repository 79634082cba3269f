"""A sweep's report: PNG figures and one self-contained report.html (images inlined).

    python -m sweep.report --results-dir results --name alpha_schedules-20261127-101500

Sections: the ranked leaderboard with the MeanFlow baseline marked (and each
config's claim against it); the confirmation (intervals over fresh seeds, paired
verdicts); FID against device-hours (GPU or CPU) with the Pareto front; FID per trial in
completion order with the best so far; alpha(k) and ratio_fm(k) of the top 5
beside the baselines'; intermediate-FID curves and how well each intermediate
FID predicts the final one (Spearman, Kendall); Optuna parameter importances;
sample grids of the top 3 and of the baselines.
"""

from __future__ import annotations

import base64
import html
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from sweep.columns import CONFIRM_COLUMNS  # noqa: E402
from sweep.folder import ResultsFolder, SweepFolder, TrialFolder  # noqa: E402
from sweep.ranking import attach_confirmations, fid_columns, fronts, rank  # noqa: E402
from sweep.tables import DamagedTable, read_confirmations, read_csv, read_table  # noqa: E402
from sweep.stats import early_signal  # noqa: E402
from sweep.report_data import (  # noqa: E402
    importances,
    intermediate_curves,
    labels,
    sample_grid_paths,
    schedule_curves,
)
from trainer.cli import Parser, ctrl_c_handled, interrupted, usage_error  # noqa: E402
from trainer.objectives.named import KNOWN  # noqa: E402
from trainer.runtime import atomic_write_bytes  # noqa: E402

COLORS = {"meanflow": "#d62728", "alphaflow": "#1f77b4", "pureflow": "#7f7f7f"}
TRIAL_COLORS = ["#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]  # none a baseline's
TOP = 20


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_leaderboard(board: pd.DataFrame, out: Path) -> Path:
    top = board.head(TOP).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(top) + 1.4))
    colors = [
        COLORS.get(b, "#2ca02c") if isinstance(b, str) else "#2ca02c" for b in top.get("baseline", [None] * len(top))
    ]
    named = labels(board)
    ax.barh([f"#{r} {named[t]}" for r, t in zip(top["rank"], top["trial_id"])], top["final_fid"], color=colors)
    ref = top["meanflow_fid"].dropna()
    if len(ref):
        ax.axvline(ref.iloc[0], color=COLORS["meanflow"], ls="--", label=f"MeanFlow {ref.iloc[0]:.2f}")
        ax.legend(loc="lower right")
    lo = top["final_fid"].min()
    ax.set_xlim(left=max(0, lo - 0.1 * (top["final_fid"].max() - lo + 1e-9) - 1e-9))
    ax.set_xlabel(f"final FID ({board['fid_kind'].iloc[0]})  - lower is better")
    ax.set_title("Leaderboard (green: searched, red: MeanFlow, blue: AlphaFlow, grey: pure flow)")
    return _save(fig, out / "leaderboard.png")


def config_costs(board: pd.DataFrame) -> pd.DataFrame:
    """One point per config: its mean final FID over seeds, its device-hours and their device kind, its objective
    as its label, and whether it is on the Pareto front of its device kind."""
    per = board.groupby("config_hash", sort=False).agg(
        final_fid=("final_fid", "mean"), device_hours=("device_hours", "first"), device_kind=("device_kind", "first")
    )
    per["label"] = per.index.map(labels(board, key="config_hash"))
    per["pareto"] = fronts(per, ["final_fid", "device_hours"], ["device_kind"])
    return per.reset_index()


def plot_cost(per: pd.DataFrame, out: Path) -> Path:
    """FID against cost for the configs of the sweep's most common device kind (a CPU-hour is not a GPU-hour)."""
    kind = per["device_kind"].mode().iloc[0] if per["device_kind"].notna().any() else ""
    others = int((per["device_kind"] != kind).sum())
    per = per[per["device_kind"] == kind]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(per["device_hours"], per["final_fid"], "o", color="#9467bd", alpha=0.6, label="config (mean over seeds)")
    front = per[per["pareto"]].sort_values("device_hours")
    ax.plot(front["device_hours"], front["final_fid"], "-o", color="#d62728", label="Pareto front")
    for _, row in front.iterrows():
        ax.annotate(
            str(row["label"]),
            (row["device_hours"], row["final_fid"]),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
    left_out = f"; {others} configs on another device left out" if others else ""
    ax.set_xlabel(f"{kind or 'device'}-hours per config (all its seeds{left_out})")
    ax.set_ylabel("final FID")
    ax.set_title("What does quality cost?")
    ax.ticklabel_format(useOffset=False)
    ax.legend()
    return _save(fig, out / "cost.png")


def plot_progress(trials: pd.DataFrame, out: Path) -> Path:
    done = trials[(trials["status"] == "completed")].sort_values("finished_at")
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.plot(range(1, len(done) + 1), done["final_fid"], "o", color="#1f77b4", label="trial")
    ax.plot(range(1, len(done) + 1), done["final_fid"].cummin(), "-", color="#d62728", label="best so far")
    ax.set_xlabel("completed trial (in order of completion)")
    ax.set_ylabel("final FID")
    ax.set_title("Is the search still improving?")
    ax.legend()
    return _save(fig, out / "progress.png")


def plot_schedules(rows: list[tuple[str, dict]], out: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
    palette = iter(TRIAL_COLORS)
    for label, curves in rows:
        style = (
            {"color": COLORS[label], "ls": "--", "lw": 2} if label in COLORS else {"color": next(palette), "lw": 1.5}
        )
        for ax, key in zip(axes, ("alpha", "ratio_fm")):
            ax.plot(curves["progress"], curves[key], label=label, **style)
    for ax, key in zip(axes, ("alpha(k)", "ratio_fm(k)")):
        ax.set_title(key)
        ax.set_xlabel("training progress k / K")
        ax.set_ylim(-0.05, 1.05)
    axes[1].legend(fontsize=7, loc="best")
    return _save(fig, out / "schedules.png")


def plot_curves(curves: dict[str, pd.DataFrame], stopped: set[str], out: Path, named: dict[str, str]) -> Path:
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for trial_id, df in curves.items():
        ls = ":" if trial_id in stopped else "-"
        ax.plot(
            df["step"],
            df["intermediate_fid"],
            ls,
            marker="o",
            ms=3,
            label=named.get(trial_id, trial_id) + (" (stopped early)" if trial_id in stopped else ""),
        )
    ax.set_xlabel("training step")
    ax.set_ylabel("intermediate FID")
    ax.set_title("Intermediate FID over training")
    if curves:
        ax.legend(fontsize=7)
    return _save(fig, out / "curves.png")


def plot_importances(values: dict[str, float], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 0.35 * max(len(values), 1) + 1.4))
    names = list(values)[::-1]
    ax.barh(names, [values[n] for n in names], color="#9467bd")
    ax.set_xlabel("importance for final FID (optuna.importance, default evaluator)")
    ax.set_title("Which parameters matter")
    return _save(fig, out / "importances.png")


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def build(folder: Path) -> Path:
    """Writes ``<folder>/report/*.png`` and ``<folder>/report.html``; returns the HTML path."""
    files = SweepFolder(folder)
    trials = read_table(files.trials_csv)
    if trials.empty:
        raise FileNotFoundError(f"{files.trials_csv} has no trials yet")
    out = files.report_figures
    out.mkdir(exist_ok=True)
    board = attach_confirmations(rank(trials), read_confirmations([files.confirm_csv]))
    parts = [
        f"<h1>Sweep {html.escape(folder.name)}</h1>",
        f"<p>{len(trials)} trials: "
        + ", ".join(f"{n} {s}" for s, n in trials["status"].value_counts().items())
        + "</p>",
    ]
    if len(board):
        kind = board["fid_kind"].iloc[0]
        board = board[board["fid_kind"] == kind]
        parts += [
            "<h2>Leaderboard</h2>",
            _img(plot_leaderboard(board, out), "leaderboard"),
            _table(board.head(TOP)),
        ]
        confirm = read_csv(files.confirm_csv)
        if not confirm.empty:
            parts += [
                "<h2>Confirmation on fresh seeds</h2>",
                f"<p>{html.escape(str(confirm['test'].iloc[0]))}, level {confirm['level'].iloc[0]}; "
                "intervals are 95% t-intervals over seeds.</p>",
                _frame_table(confirm, ["label", *CONFIRM_COLUMNS]),
            ]
        if "device_hours" in board and board["device_hours"].notna().any():
            parts += ["<h2>Cost</h2>", _img(plot_cost(config_costs(board), out), "cost")]
        signal = pd.DataFrame(early_signal(trials))
        parts += [
            "<h2>Is the early signal worth pruning on?</h2>",
            _frame_table(signal, ["step", "n", "spearman", "kendall"])
            if len(signal)
            else "<p>No intermediate FIDs in this sweep.</p>",
        ]
        parts += [
            "<h2>Search progress</h2>",
            _img(plot_progress(trials, out), "progress"),
        ]
        top_ids = list(board["trial_id"].head(5))
        stopped = list(trials.loc[trials["status"] == "stopped", "trial_id"])
        rows = schedule_curves(board.head(5), KNOWN)
        parts += ["<h2>Schedules of the top 5 and the baselines</h2>", _img(plot_schedules(rows, out), "schedules")]
        curves = intermediate_curves(trials, top_ids + stopped)
        parts += [
            "<h2>Intermediate FID</h2>",
            _img(plot_curves(curves, set(stopped), out, labels(trials[trials["trial_id"].isin(curves)])), "curves")
            if curves
            else "<p>No intermediate FIDs were reported.</p>",
        ]
        parts += ["<h2>Samples (64 each, fixed seed)</h2>"]
        grids = sample_grid_paths(trials, board, top_ids[:3])
        parts += [
            f"<figure>{_img(p, label)}<figcaption>{html.escape(label)}</figcaption></figure>" for label, p in grids
        ]
        if not grids:
            parts.append(f"<p>No sample grids found (trials write {TrialFolder.samples_png.name} at the end).</p>")
    else:
        parts.append("<p>No completed trials yet.</p>")
    values, why = importances(folder)
    parts += [
        "<h2>Parameter importances</h2>",
        _img(plot_importances(values, out), "importances") if values else f"<p>{html.escape(why)}</p>",
    ]
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(folder.name) + "</title><style>"
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}img{max-width:100%}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
        "tr.meanflow{background:#fde0e0}figure{display:inline-block;margin:8px}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )
    atomic_write_bytes(files.report_html, page.encode())
    return files.report_html


def _table(board: pd.DataFrame) -> str:
    """The top trials: who they are, their config (the keys that tell them apart), then every measurement."""
    from sweep.columns import measured, param_columns

    lead = ["rank", "trial_id", "baseline", *fid_columns(board), "delta_vs_meanflow", "claim"]
    config = [c for c in param_columns(board) if c in ("config.objective", "config.seed") or board[c].nunique() > 1]
    rest = [c for c in measured() if c not in lead and c not in ("versions", "config_hash")]
    rest += sorted(c for c in board if c.startswith(("final_fid_nfe", "fid_kind_nfe")))
    return _frame_table(board, lead + config + rest)


def _frame_table(board: pd.DataFrame, cols: list[str]) -> str:
    cols = [c for c in cols if c in board]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    rows = []
    for _, row in board[cols].iterrows():
        cls = ' class="meanflow"' if row.get("baseline") == "meanflow" else ""
        cells = "".join(
            f"<td>{'' if pd.isna(v) else (f'{v:.4g}' if isinstance(v, float) else html.escape(str(v)))}</td>"
            for v in row
        )
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<div style='overflow-x:auto'><table><tr>{head}</tr>{''.join(rows)}</table></div>"


def latest_sweep(results: Path) -> Path | None:
    folders = [p.parent for p in ResultsFolder(results).trials_tables()]
    return max(folders, key=lambda p: p.stat().st_mtime, default=None)


def main(argv=None) -> int:
    p = Parser(prog="python -m sweep.report", description=__doc__.split("\n\n")[0])
    p.add_argument("--results-dir", default="results")
    p.add_argument("--name", help="the sweep (default: the most recently updated one)")
    args = p.parse_args(argv)
    results = Path(args.results_dir)
    folder = results / args.name if args.name else latest_sweep(results)
    if folder is None or not SweepFolder(folder).trials_csv.is_file():
        names = sorted(q.parent.name for q in ResultsFolder(results).trials_tables())
        return usage_error(
            f"no sweep {args.name or ''} with results in {results}; sweeps there: {', '.join(names) or 'none'}"
        )
    try:
        with ctrl_c_handled():
            print(f"wrote {build(folder)}")
    except (DamagedTable, FileNotFoundError) as e:
        return usage_error(str(e))
    except KeyboardInterrupt:
        return interrupted()
    return 0


if __name__ == "__main__":
    sys.exit(main())
