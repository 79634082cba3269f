"""Cases of ``test_bad_inputs.py``: bad values of the keys added with TVM, TiM, DMF, the interval weight and the
finite-difference tangent (out of range, wrong type, a knob on a target that does not take it), and of the
--wandb and --metric flags."""

T, TIM, ON = "trainer", ["--set", "target=tim"], ["--set", "interval_weight.schedule=power"]
KEY_CASES = [
    (T, ["--set", "tangent=finite"], "unknown tangent 'finite'; choose one of: jvp, fd"),
    (T, ["--set", "tangent=1"], "tangent=1 must be text"),
    (T, ["--set", "tangent=fd", "--set", "tangent_eps=0.5"], "tangent_eps=0.5 must be in [0.0001, 0.05]"),
    (T, ["--set", "tangent_eps=abc"], "tangent_eps='abc' must be a number"),
    (T, ["--set", "target=pureflow", "--set", "tangent=fd"], "tangent=fd has no effect on target 'pureflow'; it"),
    (T, [*TIM, "--set", "tim_weight=sqrt2"], "unknown tim_weight 'sqrt2'; choose one of: sqrt, constant, reciprocal"),
    (T, ["--set", "tim_weight=square"], "tim_weight=square has no effect on target 'meanflow'; it applies to: tim"),
    (T, [*TIM, "--set", "tim_time_map=cos"], "unknown tim_time_map 'cos'; choose one of: tangent, sigmoid, identity"),
    (T, [*TIM, "--set", "tim_dir=2"], "tim_dir=2.0 must be in [0.0, 1.0]"),
    (T, [*TIM, "--set", "tim_dir=abc"], "tim_dir='abc' must be a number"),
    (T, ["--set", "target=dmf", "--set", "dmf_pairs=all"], "unknown dmf_pairs 'all'; choose one of: batch, row"),
    (T, ["--set", "dmf_pairs=row"], "dmf_pairs=row has no effect on target 'meanflow'; it applies to: dmf"),
    (T, ["--set", "target=imf", "--set", "imf_velocity_rows=0"], "imf_velocity_rows=0 must be text"),
    (T, ["--set", "target=imf", "--set", "imf_velocity_rows=none"], "unknown imf_velocity_rows 'none'; choose one"),
    (T, ["--set", "ratio_r0=1.5"], "ratio_r0=1.5 must be in [0, 1]"),
    (T, ["--set", "ratio_r0=abc"], "ratio_r0='abc' must be a number"),
    (T, [*ON, "--set", "interval_weight.k=0"], "interval_weight power k=0 must be > 0"),
    (
        T,
        [*ON, "--set", "interval_weight.start=2"],
        "interval_weight reaches 2 at progress 0.00; it must stay in [0, 1]",
    ),
    (T, ["--set", "interval_weight.value=abc"], "interval_weight schedule parameter value='abc' must be a finite"),
    (T, ["--set", "interval_weight.schedule=bogus"], "unknown schedule 'bogus'; choose one of: constant, linear"),
    ("sweep.run", ["--space", "target_variants", "--set", "tangent=maybe"], "unknown tangent 'maybe'; choose one of"),
    (T, [*ON, "--set", "interval_weight.gamma=2"], "interval_weight schedule 'power' has no parameter 'gamma'"),
]

R, SMOKE = "{root}/results", ["--preset", "smoke", "--space", "alpha_schedules"]
FLAG_CASES = [
    ("sweep.run", ["--results-dir", R, *SMOKE, "--wandb", "a/b"], "--wandb 'a/b' is not a W&B project name: it takes"),
    ("sweep.run", ["--results-dir", R, *SMOKE, "--wandb", "x" * 129], "is not a W&B project name: it takes 1 to 128"),
    ("sweep.run", ["--results-dir", R, *SMOKE, "--wandb", ""], "--wandb '' is not a W&B project name"),
    (
        "sweep.run",
        ["--results-dir", R, "--resume", "--name", "good", "--wandb", "p"],
        "--wandb p: sweep good was started without --wandb, and a resumed sweep keeps its settings",
    ),
    ("sweep.confirm", ["--results-dir", R, "--name", "good", "--wandb", "a#b"], "--wandb 'a#b' is not a W&B project"),
    (
        "sweep.run",
        ["--results-dir", "{root}/a-file/x", *SMOKE, "--wandb"],
        "--results-dir",  # the folder W&B's runs would go to cannot be made: refused before W&B is asked
    ),
    (
        "sweep.leaderboard",
        ["--results-dir", R, "--metric", "final_fid_nfe7"],
        "--metric 'final_fid_nfe7' is not a FID measured in {root}/results; measured there:",
    ),
]
EXTRA_CASES = KEY_CASES + FLAG_CASES  # what test_bad_inputs.py adds to its own table
