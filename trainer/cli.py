"""Command-line helpers shared by every entry point: one-sentence usage errors, KEY=VALUE overrides."""

from __future__ import annotations

import argparse
import ast
import contextlib
import sys


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) and exit code 2."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def usage_error(message: str) -> int:
    """Prints one ``error: ...`` line to stderr and returns the usage-error exit code, 2."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def literal(text: str):
    """'3' -> 3, '1e-3' -> 0.001, 'True' -> True, 'linear' -> 'linear'."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        return float(text)  # nan, inf, -inf: numbers, which the config then refuses by name
    except ValueError:
        return text


class CtrlC(KeyboardInterrupt):
    """Ctrl-C under ``ctrl_c_handled``. A subclass on purpose: CPython (3.11) marks a plain KeyboardInterrupt
    that unwinds through an exec() or eval() of a string (dataclasses, namedtuple, scipy's and numpy's lazy
    imports) as unhandled even once it is caught, and at exit kills itself by SIGINT (-2) instead of exiting
    130. The mark is set for KeyboardInterrupt exactly, never for a subclass."""


@contextlib.contextmanager
def ctrl_c_handled():
    """Within the block SIGINT raises :class:`CtrlC`; another handler already in place (or a thread that is not
    the main one) is left alone."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield
        return

    def raise_ctrl_c(signum, frame):
        raise CtrlC

    signal.signal(signal.SIGINT, raise_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def interrupted(what: str = "interrupted", code: int = 130) -> int:
    """Ctrl-C or another stop signal: one line, exit ``code`` (128 + the signal: 130 SIGINT, 143 SIGTERM)."""
    import signal

    print(f"{what} ({'Ctrl-C' if code == 130 else signal.Signals(code - 128).name})", file=sys.stderr)
    return code


def writable_dir(path: str, flag: str) -> str | None:
    """Why ``path`` cannot be an output folder (a file, or not writable), or None when it can."""
    import os
    from pathlib import Path

    p = Path(path).absolute()
    if p.exists() and not p.is_dir():
        return f"{flag} {path} is a file, not a folder"
    probe = p
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        return f"{flag} {path} is not writable"
    # access() says yes to root on read-only and pseudo file systems (/proc, /sys, which have no blocks):
    # asked of the file system, so that a refusal writes nothing, not even a probe
    fs = os.statvfs(probe)
    if fs.f_flag & os.ST_RDONLY or fs.f_blocks == 0:
        return f"{flag} {path} cannot be created: {probe} is on a read-only or pseudo file system"
    return None


def parse_sets(items: list[str]) -> dict:
    """['alpha.gamma=10', 'lr=1e-3'] -> {'alpha.gamma': 10, 'lr': 0.001}."""
    out = {}
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key:
            raise ValueError(f"--set {item!r} is not KEY=VALUE")
        out[key] = literal(text)
    return out
