"""The sweep driver: Ray Tune trials of ``trainer.train``, Optuna search, results tables.

python -m sweep.run --space alpha_schedules
python -m sweep.leaderboard --top 10
"""

import os

# Set before Ray is imported by any entry point (sweep.run, sweep.confirm, the report).
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Intermediate reports carry intermediate_fid, the last one final_fid: each metric
# is absent from some results by design, which Tune's strict check would reject.
os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
# checkpoints per eval are expected: no warning about their frequency
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
