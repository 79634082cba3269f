"""Test helpers: tiny non-linear networks and batches on the protocol's path."""

from __future__ import annotations

import torch


def randomized_dit(dtype=torch.float64, seed: int = 0, target: str | None = None, **size):
    """A tiny SmallDiT with every weight perturbed: adaLN-Zero would otherwise make it output 0.

    ``target``: also the module that target trains with the network (``net.head``), its weights perturbed too.
    """
    from trainer.model import SmallDiT
    from trainer.objectives.targets import attach_head

    torch.manual_seed(seed)
    net = SmallDiT(**({"hidden": 32, "depth": 2, "heads": 2, "patch": 8} | size)).to(dtype)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
        if target is not None and hasattr(attach_head(net, target), "head"):
            for p in net.head.parameters():
                p.add_(0.1 * torch.randn_like(p))
    return net.eval()


def batch(n: int = 4, dtype=torch.float64, seed: int = 1, fm_rows: int = 0):
    """(x_t, t, t_next, v) on the protocol's path with x0, x1 Gaussian; the first ``fm_rows`` rows have t_next = t."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, 3, 32, 32, generator=g, dtype=dtype)
    x1 = torch.randn(n, 3, 32, 32, generator=g, dtype=dtype)
    a, b = torch.rand(2, n, generator=g, dtype=dtype) * 0.8 + 0.1
    t, t_next = torch.maximum(a, b), torch.minimum(a, b)
    t_next[:fm_rows] = t[:fm_rows]
    tt = t[:, None, None, None]
    return (1 - tt) * x0 + tt * x1, t, t_next, x1 - x0


class NetworkAttempt(AssertionError):
    pass


def guard_network(monkeypatch):
    """Fails any AF_INET/AF_INET6 connection; AF_UNIX (worker pipes) still works."""
    import socket

    real_connect = socket.socket.connect

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise NetworkAttempt(f"network access attempted: {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *a, **k: (_ for _ in ()).throw(NetworkAttempt(f"DNS lookup {a[:2]}"))
    )


def standin_inception_file(folder):
    """A torchscript file shaped like clean-fid's Inception (``.layers`` maps (B,3,299,299) to 2048 features)."""
    from pathlib import Path

    class Layers(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.pool = torch.nn.AdaptiveAvgPool2d(4)
            self.fc = torch.nn.Linear(48, 2048)

        def forward(self, x):
            return torch.tanh(self.fc(self.pool(x).flatten(1)))

    class Base(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = Layers()

        def forward(self, x):
            return self.layers(x)

    path = Path(folder) / "inception-2015-12-05.pt"
    torch.jit.script(Base()).save(str(path))
    return path


def sweep_args(space: str, results, name: str, steps: int, *extra: str, **sets) -> list[str]:
    """Command-line arguments of a quiet CPU smoke sweep; ``sets`` become ``--set KEY=VALUE``."""
    args = ["--space", space, "--results-dir", str(results), "--name", name, "--preset", "smoke"]
    args += ["--steps", str(steps), "--quiet", *extra]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    return args


def loss_spec(target: str = "meanflow", **overrides):
    """The config's default loss settings for ``target``, with ``overrides`` (LossSpec takes keywords only)."""
    import dataclasses

    from trainer.config import TrainConfig

    return dataclasses.replace(TrainConfig(target=target).loss_spec(amp=False), **overrides)


# ------------------------------------------------ exact fields and target helpers (shared by test modules)
class Constant(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = torch.nn.Parameter(c)

    def forward(self, x, t, t_next):
        return self.c.expand_as(x)


class ExactMeanVelocity(torch.nn.Module):
    """The true mean velocity when the data is one point a: u = (x_t - a) / t for every t_next."""

    def __init__(self, a):
        super().__init__()
        self.a = torch.nn.Parameter(a)

    def forward(self, x, t, t_next):
        return (x - self.a) / t[:, None, None, None]


def call(name, net, x_t, t, t_next, dt, v):
    from trainer.objectives import TARGETS

    return TARGETS[name].fn(net, x_t, t, t_next, dt, v, x_t.device)


def central_dudt(net, x_t, t, t_next, v, eps=1e-5):
    """d/dt u(x_t, t, t_next) along (v, 1, 0) by a central difference."""
    plus = net(x_t + eps * v, t + eps, t_next)
    minus = net(x_t - eps * v, t - eps, t_next)
    return (plus - minus) / (2 * eps)


def rel(a, b):
    return float((a - b).detach().norm() / b.detach().norm())


def assert_first_order_in_dt(name, net, x_t, t, t_next, v, u, slope):
    """(target(dt = a (t - r)) - u) / a tends to ``slope`` linearly in a: ten times smaller a, ten times
    smaller error (a in 1e-3 .. 1e-5, the last under 1%)."""
    errors = []
    for a in (1e-3, 1e-4, 1e-5):
        got = call(name, net, x_t, t, t_next, a * (t - t_next), v)
        errors.append(rel((got - u) / a, slope))
    assert errors[2] < 1e-2, errors
    for big, small in zip(errors, errors[1:]):
        assert 0.05 < small / big < 0.2, errors


# ------------------------------------------------ drivers as subprocesses (as a user's or a batch job's)
def start_driver(args, module: str = "sweep.run", base: dict | None = None, **env):
    """``python -m sweep.run ARGS`` in its own session (signals reach its process group), output captured;
    ``base`` replaces this process's environment (a user without a token), ``env`` adds variables
    (RAY_TMPDIR for a Ray temp folder of its own); RAY_ADDRESS is never inherited."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    environ = {**(os.environ if base is None else base), "PYTHONPATH": str(root), **env}
    environ.pop("RAY_ADDRESS", None)
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=root,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_for(predicate, timeout: float, what: str, every: float = 0.5):
    """Polls ``predicate`` until it returns something other than None or False; fails naming ``what``."""
    import time

    end = time.time() + timeout
    while time.time() < end:
        got = predicate()
        if got is not None and got is not False:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def stop_when(proc, ready, sig: int, group: bool = False, timeout: float = 120) -> tuple[str, float]:
    """Calls ``ready()`` (it waits for the moment), then sends ``sig`` to the driver (its whole process group when
    ``group``); returns the driver's output and the seconds from the signal to its exit. A driver still
    running when this ends (a failed wait, no exit in ``timeout`` s) is killed with its group."""
    import os
    import signal
    import time

    try:
        ready()
        start = time.time()
        (os.killpg if group else os.kill)(proc.pid, sig)
        out, _ = proc.communicate(timeout=timeout)
        return out, time.time() - start
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
