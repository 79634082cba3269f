"""Print or export the leaderboard merged across sweeps.

python -m sweep.leaderboard                      # top 20 of results/
python -m sweep.leaderboard --space alpha_schedules --top 5
python -m sweep.leaderboard --metric final_fid_nfe1   # ranked by the 1-step FID
python -m sweep.leaderboard --csv best.csv       # export (atomic write)

It only reads: a sweep whose trials.csv is damaged is skipped with a warning.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from sweep.folder import ResultsFolder, SweepFolder
from sweep.ranking import fid_columns
from sweep.tables import merged_board, ranked, read_confirmations, write_csv
from trainer.cli import Parser, ctrl_c_handled, interrupted, usage_error, writable_dir

SHOW = [
    "rank",
    "trial_id",
    "sweep",
    "space",
    "baseline",
    "config.seed",
    "final_fid",  # then every few-step FID a trial measured (final_fid_nfe<k>), and the ranked metric first
    "delta_vs_meanflow",
    "claim",
    "fid_kind",
    "device_hours",
    "device_kind",
]


def shown(board: pd.DataFrame, metric: str) -> list[str]:
    """The printed columns: SHOW, with the ranked metric first among the FIDs and each measured FID beside it."""
    fids = fid_columns(board, first=metric)
    at = SHOW.index("final_fid")
    return [c for c in SHOW[:at] + fids + SHOW[at + 1 :] if c in board]


def main(argv=None) -> int:
    try:
        with ctrl_c_handled():
            return run(argv)
    except KeyboardInterrupt:
        return interrupted()


def run(argv=None) -> int:
    p = Parser(prog="python -m sweep.leaderboard", description=__doc__.split("\n\n")[0])
    p.add_argument("--results-dir", default="results")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--space", help="only trials of this search space")
    p.add_argument("--csv", help="write the (filtered) leaderboard to this file instead of printing it")
    p.add_argument(
        "--metric",
        default="final_fid",
        help="the FID to rank by: final_fid (the protocol's 10 steps) or a measured final_fid_nfe<k> (k steps)",
    )
    args = p.parse_args(argv)
    results = Path(args.results_dir)
    if args.top < 1:
        return usage_error(f"--top {args.top} must be at least 1")
    tables = ResultsFolder(results).trials_tables()
    if not results.is_dir() or not tables:
        return usage_error(f"no sweep results in {results}: run python -m sweep.run first")
    skipped = []

    def warn(text: str) -> None:
        skipped.append(text)
        print(f"warning: {text}", file=sys.stderr)

    board = merged_board(results, warn=warn)  # read-only: printing writes nothing, not even a lock
    if len(skipped) == len(tables):
        table = SweepFolder.trials_csv.name
        return usage_error(f"every sweep's {table} in {results} is damaged ({len(tables)}; named above)")
    if args.metric != "final_fid":
        measured = fid_columns(board)  # the FIDs the completed trials measured
        if args.metric not in measured:
            return usage_error(
                f"--metric {args.metric!r} is not a FID measured in {results}; "
                f"measured there: {', '.join(measured) or 'none'}"
            )
    if args.space:
        spaces = sorted(set(board.get("space", pd.Series(dtype=str)).dropna()))
        if args.space not in spaces:
            return usage_error(
                f"no completed trials of space {args.space!r} in {results}; spaces there: {', '.join(spaces) or 'none'}"
            )
        board = board[board["space"] == args.space]
    if args.space or args.metric != "final_fid":  # ranked again: within the space, by the metric
        board = ranked(board, read_confirmations(ResultsFolder(results).confirm_tables()), args.metric)
    board = board.groupby("fid_kind", sort=False).head(args.top) if len(board) else board
    if args.csv:
        problem = writable_dir(str(Path(args.csv).parent), "--csv's folder")
        if problem or Path(args.csv).is_dir():
            return usage_error(problem or f"--csv {args.csv} is a folder, not a file")
        write_csv(board, Path(args.csv))
        print(f"wrote {len(board)} rows to {args.csv}")
    elif board.empty:
        print("no completed trials yet")
    else:
        if args.metric != "final_fid":
            print(f"ranked by {args.metric}; delta_vs_meanflow is in {args.metric}")
        print(board[shown(board, args.metric)].to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
