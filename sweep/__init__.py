"""The sweep driver: Ray Tune trials of ``trainer.train``, Optuna search, results tables.

python -m sweep.run --space alpha_schedules
python -m sweep.leaderboard --top 10
"""
