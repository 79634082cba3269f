"""Stop signals: SIGTERM (a scheduler's preemption, ``scancel``, a time limit) stops a sweep as cleanly as Ctrl-C.

Before Tune's loop (Ray starting, the preflight) a stop signal
raises ``Stopped``, which every entry point turns into one line and exit code
128 + signal (130 for SIGINT, 143 for SIGTERM). Inside the loop, ``GracefulStop``
hands the first signal to Tune's own stop (the one Ctrl-C uses): Tune saves the
experiment state with the in-flight trials still running, so ``--resume``
continues them from their checkpoints. From that moment ``stopping()`` is true,
and a trial that ends without its final result (its worker got the signal
too) is *interrupted*: not counted as ended, not told to Optuna, not a restart.
A second SIGINT stops at once; further SIGTERMs are ignored (a scheduler may
send one to every process of the job and the batch script forward another).

Every wait has a bound: a scheduler that signals every process of a job
kills Ray's own processes too, and Tune's stop then blocks on the dead GCS
(Ray's driver gives up after 60 s, with exit 1). ``STOP_GRACE_S`` after the
signal (``MEANFLOW_STOP_GRACE_S``, default 20: SLURM's KillWait is 30 s by
default) the driver writes its tables from what it already has, prints the
summary and the ``--resume`` command, stops this process's children and
exits 128 + signal, whatever Tune is doing. What a resume needs was already
on disk: Tune's periodic experiment state, every trial's last checkpoint,
finished trials' rows and finals (never rerun), the Optuna study, and in it
every config handed out (``sweep.handout`` runs the lost ones again).

The first stop signal also names the trials in flight at once: what ends the
process next (a scheduler killing Ray's processes with the job's steps) may
leave no time for more. Ray's own processes can end under a driver that got
no signal (the GCS killed, its host gone): Ray's driver then exits 1 once the
GCS has not answered for ``gcs_rpc_server_reconnect_timeout_s`` (60 s by
default), which reads as "every trial failed". The driver watches the GCS's
port instead, and ``lost_after_s()`` before Ray gives up it stops as a
SIGTERM does (tables, summary, the trials in flight, exit 143).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time

from ray.tune import Callback

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)  # SIGUSR1: Tune's own stop signal
SUMMARY_S = 10  # after the grace, how long a driver already printing its summary is given to finish
_received: list[int] = []  # the first stop signal this process received (module state: searchers are pickled)
_settled = threading.Event()  # Ray is stopped too: nothing left that can hang
_lock = threading.Lock()
_summary_by: list[str] = []  # who prints the summary after a stop: "driver" (Tune returned) or "deadline"
_cause: list[str] = []  # what stopped the driver when no signal did (Ray's GCS lost)
WATCH_EVERY_S = 2.0  # how often the driver knocks on its GCS's port


class Stopped(KeyboardInterrupt):
    """A stop signal arrived outside Tune's loop; ``code`` is the exit code, 128 + signal."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.code = 128 + signum


def stopping() -> bool:
    """True once this driver received a stop signal."""
    return bool(_received)


def exit_code() -> int | None:
    """128 + the first stop signal, or None when none arrived."""
    return 128 + _received[0] if _received else None


def signal_name() -> str:
    """What stopped the driver: the signal's name, or the loss of Ray's GCS."""
    return _cause[0] if _cause else signal.Signals(_received[0]).name if _received else ""


def _note(signum: int) -> None:
    if not _received:
        _received.append(signum)


def _raise(signum, frame):
    _note(signum)
    raise Stopped(signum)


def raise_on_stop() -> None:
    """Outside Tune's loop a stop signal raises ``Stopped``; called at start and again after ``ray.init``
    (a local Ray head installs a SIGTERM handler of its own that kills Ray and exits 1)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise)


def restore() -> None:
    """Python's own handlers again (tests and library callers run several sweeps in one process)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)


def reset() -> None:
    """Forgets a received signal (tests run several sweeps in one process)."""
    _received.clear()
    _settled.clear()
    _summary_by.clear()
    _cause.clear()


def stoppable(body, message: str) -> int:
    """A command's ``body()`` with stop signals raised (SIGTERM as Ctrl-C is): when one arrives, ``message``
    and exit 128 + the signal (130, 143). Python's handlers are restored after."""
    from trainer.cli import interrupted

    reset()
    raise_on_stop()
    try:
        return body()
    except KeyboardInterrupt as e:
        return interrupted(message, getattr(e, "code", 130))
    finally:
        restore()


def _claim(who: str) -> bool:
    """The summary is printed once, by whoever comes first: the driver once Tune returned, or the deadline."""
    with _lock:
        if not _summary_by:
            _summary_by.append(who)
        return _summary_by[0] == who


def fit_returned() -> None:
    """Tune returned: the driver writes the tables and prints the summary itself, unless the stop deadline
    already does (then this thread waits for the deadline to end the process). A signal from now on is
    noted and bounded by the deadline, but does not cut the summary short."""
    if not _claim("driver"):
        threading.Event().wait()


def settled() -> None:
    """Ray is stopped (or was never ours): a pending stop deadline has nothing left to cut short."""
    _settled.set()


def grace_seconds() -> float:
    """MEANFLOW_STOP_GRACE_S, checked when read: a bad value is one sentence, not a hang."""
    text = os.environ.get("MEANFLOW_STOP_GRACE_S", "20")
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 < value < 3600):
        raise ValueError(f"MEANFLOW_STOP_GRACE_S={text!r} must be a number of seconds in (0, 3600)")
    return value


def lost_after_s() -> float:
    """How long the GCS may not answer before the driver stops: well before Ray's driver gives up on it
    (``RAY_gcs_rpc_server_reconnect_timeout_s``, 60 s by default), so a GCS that Ray would wait for (a
    restart with GCS fault tolerance) is waited for too."""
    try:
        ray_s = float(os.environ.get("RAY_gcs_rpc_server_reconnect_timeout_s", "60"))
    except ValueError:
        ray_s = 60.0
    return max(ray_s - 10.0, ray_s / 2) if ray_s > 0 else 50.0


def answers(address: str, timeout: float = 2.0) -> bool:
    """Whether something accepts connections on ``address`` (host:port): a dead GCS's port refuses at once, a
    lost host's times out."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except (OSError, ValueError):
        return False
    return True


def stop_children() -> None:
    """SIGKILL to every descendant of this process (a local Ray's GCS, raylet and workers), read from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        try:
            stat = open(f"/proc/{entry}/stat").read() if entry.isdigit() else ""
        except OSError:
            continue
        if stat:
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    mine, grew = {os.getpid()}, True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in mine} - mine
        mine |= more
        grew = bool(more)
    for pid in mine - {os.getpid()}:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


class GracefulStop(Callback):
    """Inside Tune's loop: the first stop signal ends the loop through Tune's own stop; see the module docstring.

    ``on_deadline()`` (writes the tables, prints the summary, returns the exit
    code) runs when Tune has not returned ``grace_s`` seconds after the signal.
    """

    def __init__(self, on_deadline=None, grace_s: float | None = None, in_flight=None):
        self.on_deadline, self.in_flight = on_deadline, in_flight  # in_flight(): the trials running, named
        self.grace_s = grace_s if grace_s is not None else grace_seconds()

    def _deadline(self, wait: bool = True) -> None:
        if wait and _settled.wait(self.grace_s):
            return
        code = exit_code()
        if not _claim("deadline"):  # the driver is printing its summary: it gets a little longer
            if _settled.wait(SUMMARY_S):
                return
        else:
            try:
                if wait:
                    late = f"Ray did not stop within {self.grace_s:g} s of the signal; stopping without it"
                    print(late, file=sys.stderr)
                code = self.on_deadline() if self.on_deadline else code
            except Exception as e:  # noqa: BLE001  (the process ends below whatever went wrong here)
                print(f"error: the summary could not be written ({e}); rerun with --resume", file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
        stop_children()
        os._exit(code or exit_code() or 1)

    def _say_in_flight(self) -> None:
        if self.in_flight:
            names = self.in_flight()
            print(f"in flight: {', '.join(names) if names else 'none'}", file=sys.stderr, flush=True)

    def _watch(self, address: str, lost_s: float) -> None:
        """Stops the driver as a SIGTERM would once its GCS has not answered for ``lost_s``."""
        down_since = None
        while not _settled.wait(WATCH_EVERY_S) and not _summary_by:
            if answers(address):
                down_since = None
                continue
            down_since = down_since or time.monotonic()
            if time.monotonic() - down_since >= lost_s and not stopping():
                _note(signal.SIGTERM)
                _cause.append(f"the loss of Ray's GCS at {address}")
                print(f"Ray's GCS at {address} has not answered for {lost_s:g} s: stopping", file=sys.stderr)
                self._say_in_flight()
                return self._deadline(wait=False)

    def setup(self, **info):
        tune_stop = signal.getsignal(signal.SIGUSR1)  # installed by Tune just before the callbacks' setup
        import ray

        if ray.is_initialized():
            address = ray.get_runtime_context().gcs_address
            watch = threading.Thread(target=self._watch, args=(address, lost_after_s()), name="gcs-watch", daemon=True)
            watch.start()

        def handler(signum, frame):
            if stopping():
                if signum == signal.SIGINT:  # a second Ctrl-C: stop now
                    raise Stopped(signum)
                return
            _note(signum)
            print(
                f"{signal.Signals(signum).name} received: stopping; finished trials are kept, running ones "
                "continue from their checkpoints on --resume",
                file=sys.stderr,
                flush=True,
            )
            self._say_in_flight()  # at once: what ends this process next may leave no time (module docstring)
            threading.Thread(target=self._deadline, name="stop-deadline", daemon=True).start()
            if callable(tune_stop):
                tune_stop(signum, frame)
            for sig in STOP_SIGNALS:  # Tune's stop puts its predecessor back on SIGINT
                signal.signal(sig, handler)

        for sig in STOP_SIGNALS:
            signal.signal(sig, handler)
