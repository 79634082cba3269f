"""Before a sweep uses a cluster: can it be reached, can any node hold a trial, does every node have what trials need.

Each check ends in one sentence naming what is wrong (a ``ClusterError``, which
the driver turns into exit 2) before anything is written, and each waits at
most a bounded time.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import uuid
from pathlib import Path

from sweep.folder import ResultsFolder

PROBE_TIMEOUT_S = 10  # a TCP connection to the head
CONNECT_TIMEOUT_S = 30  # joining the cluster
NODE_CHECK_TIMEOUT_S = 120  # every node's check task


class ClusterError(RuntimeError):
    """The cluster cannot run this sweep; the message names the node and what is missing."""


def resolve_auto() -> str:
    """What ``--address auto`` names, found as Ray finds it: RAY_ADDRESS, else the bootstrap file of the last
    head started on this machine (which a head that died uncleanly leaves behind, naming a dead address)."""
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"]
    import tempfile

    bootstrap = Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    try:
        return bootstrap.read_text().strip().splitlines()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        raise ClusterError(
            f"--address auto: RAY_ADDRESS is unset and {bootstrap} names no Ray head; "
            "give HOST:PORT, or leave --address out to start a Ray of this sweep's own"
        ) from None


def probe_address(address: str, timeout: float = PROBE_TIMEOUT_S) -> str:
    """HOST:PORT (``auto`` resolved) must accept a TCP connection within ``timeout`` (ray.init itself retries
    for minutes); returns the address probed."""
    shown = address
    if address == "auto":
        address = resolve_auto()
        shown = f"auto ({address})"
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--address {address!r} is not HOST:PORT or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise ClusterError(f"--address {shown}: no Ray head answers there ({e.strerror or e})") from None
    return address


def connect(address: str | None) -> None:
    """ray.init on ``address``, refusing to wait more than CONNECT_TIMEOUT_S; with none, a new local instance.

    ``address="local"`` always starts a Ray of its own: a bare ``ray.init()``
    would read RAY_ADDRESS and the bootstrap file ``<ray temp>/ray/ray_current_cluster``
    and join whatever they name, retrying a dead head for ever when the file is
    stale, or joining a colleague's instance (and dying with it). ``--address
    auto`` is the explicit way to join one.

    Either way the connection is locked with a token (``sweep.auth``): a local Ray starts in token mode with
    the user's or the project's token; a cluster is asked first whether it takes this user's token, so a
    missing or wrong one is a ClusterError (one sentence), and a cluster without authentication a warning.
    """
    import ray

    from sweep import auth

    if address is None:
        try:
            auth.for_local_ray()
        except auth.AuthError as e:
            raise ClusterError(str(e)) from None
        ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level="warning")
        return
    address = probe_address(address)  # again: sweep.confirm and library callers come here directly
    os.environ.setdefault("RAY_gcs_rpc_server_connect_timeout_s", str(CONNECT_TIMEOUT_S))
    try:
        warning = auth.for_cluster(address)
    except auth.AuthError as e:
        raise ClusterError(str(e)) from None
    if warning:
        print(warning, file=sys.stderr)
    try:
        ray.init(address=address, log_to_driver=False, logging_level="warning")
    except (ConnectionError, TimeoutError, RuntimeError) as e:
        raise ClusterError(f"--address {address}: could not join the Ray cluster ({str(e).splitlines()[0]})") from None


def alive_nodes() -> list[dict]:
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def check_fits(cpus: float, gpus: float) -> None:
    """Some alive node must hold one trial's resources, else the trial would wait forever."""
    nodes = alive_nodes()
    if any(n["Resources"].get("CPU", 0) >= cpus and n["Resources"].get("GPU", 0) >= gpus for n in nodes):
        return
    largest = max(nodes, key=lambda n: (n["Resources"].get("GPU", 0), n["Resources"].get("CPU", 0)), default=None)
    have = (
        f"{largest['Resources'].get('CPU', 0):g} CPU / {largest['Resources'].get('GPU', 0):g} GPU"
        if largest
        else "none"
    )
    raise ClusterError(
        f"a trial asks for {cpus:g} CPU / {gpus:g} GPU but no node has that much (the largest: {have}); "
        "lower --cpus-per-trial / --gpus-per-trial"
    )


def node_check(data: dict, results_dir: str, marker: str) -> dict:
    """Runs on one node: opens the data and FID cache, reads the results folder's marker, counts GPUs."""
    problems = []
    try:
        import torch

        gpus = torch.cuda.device_count()
    except Exception as e:  # noqa: BLE001  (torch missing or broken is what this reports)
        return {"problems": [f"torch does not import ({e})"]}
    try:
        from trainer.data import DataError, load_images

        if data.get("dataset"):
            load_images(data["dataset"], data["data_dir"])
    except DataError as e:
        problems.append(str(e))
    except Exception as e:  # noqa: BLE001
        problems.append(f"the dataset does not load ({e})")
    if data.get("fid_mode") == "clean-fid":
        try:
            from trainer.fid_cache import FidCacheMissing, cache_dir, ensure_cache

            ensure_cache(cache_dir(data.get("fid_cache") or None), log=lambda _: None)  # fetched where allowed
        except (FidCacheMissing, OSError) as e:
            problems.append(str(e))
    path = Path(results_dir) / marker
    if not path.is_file():
        problems.append(f"the results folder {results_dir} is not the driver's (shared) folder here")
    elif not os.access(results_dir, os.W_OK):
        problems.append(f"the results folder {results_dir} is not writable here")
    return {"problems": problems, "gpus": gpus}


def check_nodes(cfg, results_dir: Path, timeout: float = NODE_CHECK_TIMEOUT_S) -> None:
    """A small task pinned to every alive node: data, FID cache, shared results folder, torch and its GPUs."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    data = {"dataset": cfg.dataset, "data_dir": cfg.data_dir, "fid_mode": cfg.fid_mode, "fid_cache": cfg.fid_cache}
    results_dir.mkdir(parents=True, exist_ok=True)
    marker = ResultsFolder(results_dir).node_check(uuid.uuid4().hex)
    marker.write_text("written by the sweep driver\n")
    remote = ray.remote(num_cpus=0)(node_check)
    try:
        nodes = alive_nodes()
        refs = {
            n["NodeManagerAddress"] + " (" + n["NodeID"][:8] + ")": (
                n,
                remote.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
                    data, str(results_dir), marker.name
                ),
            )
            for n in nodes
        }
        deadline = time.monotonic() + timeout
        for name, (node, ref) in refs.items():
            try:
                got = ray.get(ref, timeout=max(1.0, deadline - time.monotonic()))
            except ray.exceptions.GetTimeoutError:
                raise ClusterError(f"node {name} did not answer its check within {timeout:g} s") from None
            problems = list(got["problems"])
            advertised = node["Resources"].get("GPU", 0)
            if "gpus" in got and int(advertised) != got["gpus"]:
                problems.append(f"it advertises {advertised:g} GPUs to Ray but torch sees {got['gpus']}")
            if problems:
                raise ClusterError(f"node {name}: {'; '.join(problems)}")
    finally:
        marker.unlink(missing_ok=True)


def gpu_wait_note(waiting: int, needs_gpu: bool) -> str | None:
    """What the progress line says when trials wait for GPUs and no alive node has one."""
    if not waiting or not needs_gpu:
        return None
    if any(n["Resources"].get("GPU", 0) > 0 for n in alive_nodes()):
        return None
    return f"{waiting} trials wait for a GPU but no alive node has one (the last GPU node is gone)"
