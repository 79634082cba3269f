"""A Tune callback that keeps the results table current and prints progress.

What is written when: a trial's start and end reach trials.csv at once (a finished trial survives any crash);
an intermediate FID within PROGRESS_EVERY_S; the leaderboards (derived from trials.csv, the merged one a
re-read of every sweep under a lock) within BOARDS_EVERY_S of a trial's end, and at the end of the run.
Rewriting trials.csv costs time that grows with its rows (``python -m sweep.simulate tables``): at every
intermediate result of a 1,000-trial sweep it would cost more than the rest of the driver's work on it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from datetime import datetime, timezone

from ray.tune import Callback

from search_spaces import SearchSpace
from sweep import signals
from sweep.columns import FAILED, INTERMEDIATE, config_row, is_measurement
from sweep.configs import Configs
from sweep.tables import SweepTable
from sweep.trainable import flat_params, row_of

PROGRESS_EVERY_S = 2.0  # an intermediate FID reaches trials.csv within this (on the driver loop's next step)
BOARDS_EVERY_S = 10.0  # the leaderboards follow a trial's end within this


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def last_line(text: str | None) -> str:
    """The last non-empty line of an error text (an exception's type and message), at most 300 characters."""
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else "unknown error")[:300]


def named(row: dict) -> str:
    """What a trials.csv row runs, for a person: its baseline, else its objective."""
    for key in ("baseline", "config.objective"):  # a pandas row holds NaN where a value is missing
        if isinstance(row.get(key), str) and row[key]:
            return row[key]
    return "config"


class RecordsCallback(Callback):
    """Writes trials.csv / leaderboard.csv as trials start, report and finish; prints one line per event."""

    def __init__(
        self,
        table: SweepTable,
        space: SearchSpace,
        total: int,
        configs: Configs,
        quiet: bool = False,
        needs_gpu: bool = False,
    ):
        self.table, self.space, self.total, self.quiet, self.configs = table, space, total, quiet, configs
        self.needs_gpu, self._checked_gpus = needs_gpu, 0.0
        self.t0 = time.time()
        self._csv_at = self._boards_at = -math.inf  # when each was last written (the first write is at once)
        self._csv_due = self._boards_due = False  # changes not yet written

    def save(self, now: bool = False) -> None:
        """trials.csv at once when ``now`` (a trial started or ended), else within PROGRESS_EVERY_S; the boards
        within BOARDS_EVERY_S of a change that moves them."""
        t = time.monotonic()
        boards = self._boards_due and t - self._boards_at >= BOARDS_EVERY_S
        if now or boards or (self._csv_due and t - self._csv_at >= PROGRESS_EVERY_S):
            self.table.save(boards=boards)
            self._csv_at, self._csv_due = t, False
            if boards:
                self._boards_at, self._boards_due = t, False

    def on_step_end(self, iteration, trials, **info):
        """The driver loop's every step: what is due gets written (a quiet sweep still reaches its tables)."""
        if self._csv_due or self._boards_due:
            self.save()

    def on_experiment_end(self, trials, **info):
        self.table.save()
        self._csv_due = self._boards_due = False

    def setup(self, **info):
        self.table.load()  # a resumed driver starts from what was written before
        self.table.interrupt_running()  # a dead driver's trials; Tune resumes them under their ids
        self.t0 = time.time()

    def in_flight(self) -> list[str]:
        """The trials running now, each as its row id and what it runs (baseline or objective)."""
        rows = [r for r in self.table.rows.values() if r["status"] == "running"]
        return [f"{r['trial_id']} ({named(r)})" for r in rows]

    def on_step_begin(self, iteration, trials, **info):
        """Every 30 s while trials wait for GPUs: says so when no alive node has one left."""
        if not self.needs_gpu or time.time() - self._checked_gpus < 30:
            return
        self._checked_gpus = time.time()
        from sweep.cluster import gpu_wait_note

        note = gpu_wait_note(sum(t.status == "PENDING" for t in trials), self.needs_gpu)
        if note:
            print(f"[{time.time() - self.t0:7.1f}s] {note}", flush=True)  # shown even with --quiet

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(f"[{time.time() - self.t0:7.1f}s] {text}", flush=True)

    @staticmethod
    def _params(trial) -> dict:
        return flat_params(trial.config)  # the searched keys and the ones the space fixes: flat trainer config keys

    def on_trial_start(self, iteration, trials, trial, **info):
        params, key = self._params(trial), row_of(trial)
        row = self.table.rows.get(key, {})
        try:  # known at start, so a failed trial has its hash and seed too
            cfg = self.configs.of(params)
        except ValueError:  # the trial fails with this message itself
            cfg = None
        fields = {**config_row(params, cfg), "status": "running", "baseline": self.space.baseline_of(params)}
        if cfg is not None:
            fields["config_hash"] = cfg.config_hash()
        if row.get("status") == "interrupted":  # continues from its checkpoint on a resumed sweep
            fields["restarts"] = int(row.get("restarts") or 0) + 1
        else:
            fields["started_at"] = now()
        fields["trial_dir"] = trial.path  # Tune's own record of the trial folder (samples.png, progress.csv)
        self.table.update(key, **fields)
        self.save(now=True)
        if key != trial.trial_id:  # said even with --quiet: the log of a requeued job shows what ran again
            print(
                f"[{time.time() - self.t0:7.1f}s] {key} ({fields['baseline'] or params}) runs again as Tune trial "
                f"{trial.trial_id}: it was handed out before a stop that Tune's state never saw",
                flush=True,
            )
        self._say(f"start {key} {params}")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "final_fid" in result or "step" not in result:
            return
        rate = result.get("steps_per_s") or 0
        progress = result.get("progress", 0)
        eta = (result["step"] / progress - result["step"]) / rate if rate and progress else float("nan")
        fid = result.get("intermediate_fid")
        self._say(
            f"{row_of(trial)} step {result['step']} ({100 * progress:.0f}%) {rate:.2f} steps/s "
            f"ETA {eta:.0f}s" + (f" intermediate FID {fid:.3f}" if fid is not None else "")
        )
        if fid is not None:
            fields = {"best_intermediate_fid": self._best(trial, fid), f"{INTERMEDIATE}{result['step']}": fid}
            self.table.update(row_of(trial), step=result["step"], **fields)
            # progress others can watch, within PROGRESS_EVERY_S; an intermediate FID moves no ranking, so
            # the leaderboards wait for the trial's end
            self._csv_due = True
            self.save()

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = trial.last_result or {}
        if "final_fid" not in last and signals.stopping():  # its worker got the stop signal too
            return self._interrupted(trial)
        if last.get("status") in FAILED:  # the trial's own failure, reported as data
            fields = {k: last[k] for k in ("status", "error", "diverged_step") if k in last}
            self.table.update(row_of(trial), finished_at=now(), **fields)
            self._say(f"{last['status']} {row_of(trial)}: {last.get('error')}")
        elif "final_fid" in last:
            fields = {k: v for k, v in last.items() if is_measurement(k)}  # the record's columns, step, costs
            # intermediate FIDs reported before a restart stay counted (the trainer knows those since its checkpoint)
            fields["best_intermediate_fid"] = self._best(trial, last.get("best_intermediate_fid"))
            self.table.update(row_of(trial), status="completed", finished_at=now(), **fields)
            self._say(f"done  {row_of(trial)} final FID {last['final_fid']:.4f} ({last.get('fid_kind')})")
        else:  # ended by the scheduler (ASHA) before its final score
            self.table.update(row_of(trial), status="stopped", finished_at=now(), step=last.get("step"))
            self._say(f"stopped {row_of(trial)} at step {last.get('step')} by the scheduler")
        self._summary()

    @staticmethod
    def _error_text(trial) -> str | None:
        # The driver-side copy is written before this callback; the storage copy (get_error) is synced later.
        local = trial.error_file
        if local and Path(local).is_file():
            return Path(local).read_text()
        return trial.get_error()

    def on_trial_recover(self, iteration, trials, trial, **info):
        """An infrastructure failure (worker, actor or node died): Tune restarts the trial from its checkpoint."""
        if signals.stopping():
            return self._interrupted(trial)
        row = self.table.rows.get(row_of(trial), {})
        restarts = int(row.get("restarts") or 0) + 1
        self.table.update(row_of(trial), restarts=restarts, status="running")
        self.save(now=True)
        self._say(f"restart {row_of(trial)} ({restarts}) after: {last_line(self._error_text(trial))}")

    def on_trial_error(self, iteration, trials, trial, **info):
        # Its own failures end a trial normally with a status (on_trial_complete); what raises here is the
        # infrastructure's, after --max-failures restarts.
        if signals.stopping():
            return self._interrupted(trial)
        message = last_line(self._error_text(trial))
        self.table.update(row_of(trial), status="error", error=message, finished_at=now())
        self._say(f"error {row_of(trial)}: {message}")
        self._summary()

    def _best(self, trial, fid: float | None) -> float | None:
        """The lowest intermediate FID of the trial's row and ``fid``."""
        seen = [self.table.rows.get(row_of(trial), {}).get("best_intermediate_fid"), fid]
        seen = [x for x in seen if x is not None and x == x]
        return min(seen) if seen else None

    def _interrupted(self, trial) -> None:
        """The driver is stopping: the trial neither ended nor failed; it continues on --resume."""
        self.table.update(row_of(trial), status="interrupted")
        self.save(now=True)
        self._say(f"interrupted {row_of(trial)}")

    def _summary(self) -> None:
        self._boards_due = True  # a trial ended: the boards follow
        self.save(now=True)
        rows = list(self.table.rows.values())
        done = [r for r in rows if r["status"] == "completed"]
        failed = sum(r["status"] in FAILED for r in rows)
        running = sum(r["status"] == "running" for r in rows)
        best = min(done, key=lambda r: r["final_fid"], default=None)
        self._say(
            f"{len(done)}/{self.total} completed, {running} running, {failed} failed"
            + (f"; best FID {best['final_fid']:.4f} ({best['trial_id']})" if best else "")
        )
