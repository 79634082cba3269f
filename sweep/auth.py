"""Ray's token authentication: the one lock on a Ray cluster, on every Ray this project starts or joins.

Ray's GCS server and raylets listen on every interface, and whoever reaches them can run code as the user who
started Ray, unless the cluster was started with ``RAY_AUTH_MODE=token`` (Ray >= 2.52): then every connection
must carry the cluster's token. Ray reads the token from ``$RAY_AUTH_TOKEN``, else the file
``$RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``.

- A Ray of the sweep's own (no ``--address``) and the SLURM recipe's use the project's token: a file made once
  with mode 0600 in a 0700 folder (``own_token_path()``), named to Ray by ``RAY_AUTH_TOKEN_PATH``; a token the
  user named themselves (either variable) is used instead.
- Joining a cluster (``--address``) uses the user's token, looked for where Ray looks and then in the project's
  file. The cluster is asked first, without a token and then with it, so a missing or wrong token is one
  sentence and a cluster without authentication is a warning, before anything is written.
- A token file that other users can read is refused (as ssh refuses such a key): the secret may be known.

The token itself is never printed, logged, written to results or put on a command line.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import sys
from pathlib import Path

MODE_ENV = "RAY_AUTH_MODE"
TOKEN_ENV = "RAY_AUTH_TOKEN"
PATH_ENV = "RAY_AUTH_TOKEN_PATH"


class AuthError(RuntimeError):
    """A token that cannot be used (missing, empty, readable by others, refused); the message is one sentence."""


def own_token_path() -> Path:
    """The project's token: ``~/.cache/meanflow-sweep/secrets/ray_auth_token`` (a shared HOME reaches every
    node of a cluster; elsewhere name a shared, private file with ``RAY_AUTH_TOKEN_PATH``)."""
    return Path.home() / ".cache" / "meanflow-sweep" / "secrets" / "ray_auth_token"


def ray_default_path() -> Path:
    """Where Ray itself keeps a token (``ray get-auth-token --generate`` writes it there, mode 0644)."""
    return Path.home() / ".ray" / "auth_token"


def check_private(path: Path) -> None:
    """``path`` is a non-empty regular file that only its owner can read or write."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise AuthError(f"the Ray token file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise AuthError(
                f"the Ray token file {path} can be read or written by other users (mode "
                f"{stat.S_IMODE(info.st_mode):04o}), so its secret may be known: make a new one or chmod 600 it"
            )
        if not path.read_text().strip():
            raise AuthError(f"the Ray token file {path} is empty")
    except OSError as e:
        raise AuthError(f"the Ray token file {path} cannot be read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise AuthError(f"the Ray token file {path} is not text") from None


def ensure_own_token() -> Path:
    """The project's token file, made on first use (32 random bytes as hex, 0600, in a 0700 folder)."""
    path = own_token_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)  # a folder made earlier under a looser umask
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        check_private(path)
        return path
    except OSError as e:
        raise AuthError(f"cannot make the Ray token file {path} ({e.strerror or e})") from None
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return path


def user_token(named_only: bool = False) -> str | None:
    """Where the user's token is, as Ray looks and then the project's file (``named_only``: the two variables
    alone): a description for messages (never the token), or None. A file that is there but unusable raises
    AuthError rather than being skipped."""
    if os.environ.get(TOKEN_ENV, "").strip():
        return f"${TOKEN_ENV}"
    if os.environ.get(PATH_ENV):
        path = Path(os.environ[PATH_ENV]).expanduser()
        check_private(path)
        return f"${PATH_ENV} ({path})"
    if named_only:
        return None
    for path in (ray_default_path(), own_token_path()):
        if path.exists():
            check_private(path)
            os.environ[PATH_ENV] = str(path)  # Ray looks no further than ~/.ray/auth_token itself
            return str(path)
    return None


def looked_in() -> str:
    return f"${TOKEN_ENV}, ${PATH_ENV}, {ray_default_path()} and {own_token_path()}"


def set_mode(mode: str) -> None:
    """This process's Ray authentication mode (``token`` or ``disabled``), taking effect at once (Ray's config
    and token cache are read again), as Ray's own ``ray.init`` does when it turns token mode on."""
    os.environ[MODE_ENV] = mode
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def for_local_ray() -> None:
    """Before a Ray of the sweep's own starts: token mode on, the user's token or the project's. An environment
    asking for no authentication is not followed, and a note on stderr says so (once: the mode is then token).
    Ray's own ``~/.ray/auth_token`` is not used: Ray writes it readable by every user."""
    if os.environ.get(MODE_ENV, "").lower() not in ("", "token"):
        print(
            f"note: {MODE_ENV}={os.environ[MODE_ENV]} is not followed: the sweep's own Ray always asks for a "
            "token (docs/security.md)",
            file=sys.stderr,
        )
    local_token()
    set_mode("token")


def local_token() -> str:
    """The token a Ray of the project's starts with: the user's named one (its path, or "" for
    ``$RAY_AUTH_TOKEN``), else the project's file, made if needed and named by ``RAY_AUTH_TOKEN_PATH``."""
    if user_token(named_only=True) is None:
        os.environ[PATH_ENV] = str(ensure_own_token())
    return "" if os.environ.get(TOKEN_ENV, "").strip() else str(Path(os.environ[PATH_ENV]).expanduser())


@contextlib.contextmanager
def _quiet_stderr():
    """Ray's C++ client logs each refused call to file descriptor 2 itself; the refusal is reported here, once."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _accepts(address: str) -> bool:
    """Whether the GCS at ``address`` answers this process's first question (its cluster id), as Ray's clients
    ask it first; False when it refuses the token (or its absence)."""
    from ray._raylet import GcsClient
    from ray.exceptions import AuthenticationError

    with _quiet_stderr():
        try:
            GcsClient(address=address)
        except AuthenticationError:
            return False
    return True


def for_cluster(address: str) -> str | None:
    """Before joining ``address``: the cluster refuses no token, or takes the user's. Raises AuthError (one
    sentence) when it asks for a token none was found for, or refuses the one found; returns a warning when
    the cluster takes connections without a token."""
    source = user_token()
    set_mode("disabled")
    if _accepts(address):
        return (
            f"warning: the Ray cluster at {address} takes connections without a token: anyone who reaches its "
            f"ports can run code as its user; start it with {MODE_ENV}=token (docs/security.md)"
        )
    if source is None:
        raise AuthError(
            f"--address {address}: the Ray cluster asks for an authentication token and none was found "
            f"(looked in {looked_in()})"
        )
    set_mode("token")
    if not _accepts(address):
        raise AuthError(f"--address {address}: the Ray cluster refused the token from {source}")
    return None


def main(argv: list[str] | None = None) -> int:
    """``python -m sweep.auth path``: the token file a Ray of the project's starts with, made if needed: the
    path printed (never the token), or an empty line when ``$RAY_AUTH_TOKEN`` holds the user's own. The SLURM
    recipe points every node's Ray at it."""
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["path"]:
        print(f"error: python -m sweep.auth takes one word, path; got {' '.join(argv)!r}", file=sys.stderr)
        return 2
    try:
        print(local_token())
    except AuthError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
