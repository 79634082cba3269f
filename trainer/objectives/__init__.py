"""Training objectives for mean-velocity flow models.

The convention, stated once for the whole project:

    x_t = (1 - t) * x0 + t * x1,   x0 ~ data,  x1 ~ N(0, I),   v = x1 - x0,
    0 <= t_next <= t <= 1,
    net(x, t, t_next) predicts the mean velocity u over [t_next, t], so that
    x_{t_next} = x_t - (t - t_next) * u(x_t, t, t_next).

Rows with t_next == t are plain flow matching (u(x_t, t, t) = v in expectation).
The MeanFlow identity u = v - (t - t_next) * d/dt u(x_t, t, t_next), with the
total derivative taken along the path (tangent (v, 1, 0)), gives the continuous
target; AlphaFlow replaces the derivative by a finite step of size
dt = alpha * (t - t_next).

The research protocol's two extension points live here:
- ``TARGETS[name].fn`` is ``compute_mean_velocity_target(net, x_t, t, t_next, dt, velocity, device)``
  (``TARGETS[name]`` is the target's record: see ``targets.py``);
- ``make_traj_params(ratio_spec, alpha_spec)`` returns
  ``sample_traj_params(batch_size, cur_step, max_steps, device) -> (ratio_fm, alpha)``.
"""

from trainer.objectives.loss import DISCRETE_WEIGHTS, LOSS_REDUCTIONS, RowLoss, adaptive_weight, discrete_row_weight
from trainer.objectives.schedules import SCHEDULES, ScheduleSpec, make_schedule, make_traj_params
from trainer.objectives.targets import TARGETS, Target, fused_target, target
from trainer.objectives import variants, recent, flowmaps  # noqa: F401  (register the later targets)
from trainer.objectives.time_sampling import FM_TIMES, TIME_SAMPLERS, TimeSpec, sample_times
from trainer.objectives.named import OBJECTIVES, Objective
from trainer.objectives import named_flowmaps  # noqa: F401,E402  (register the later named objectives)

__all__ = [
    "OBJECTIVES",
    "Objective",
    "DISCRETE_WEIGHTS",
    "LOSS_REDUCTIONS",
    "RowLoss",
    "adaptive_weight",
    "discrete_row_weight",
    "SCHEDULES",
    "ScheduleSpec",
    "make_schedule",
    "make_traj_params",
    "TARGETS",
    "Target",
    "target",
    "fused_target",
    "FM_TIMES",
    "TIME_SAMPLERS",
    "TimeSpec",
    "sample_times",
]
