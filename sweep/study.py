"""Where a sweep's Optuna study lives (no Ray needed: the report reads it too)."""

from __future__ import annotations

from pathlib import Path

import optuna

STUDY_FILES = {"sqlite": "optuna.db", "journal": "optuna.journal"}  # in the sweep folder; a URL names a server


def study_storage(kind: str, folder: Path):
    """Where the Optuna study lives: SQLite in the sweep folder (`optuna-dashboard sqlite:///<folder>/optuna.db`),
    Optuna's journal file there (SQLite's locking is unreliable over NFS; the journal is documented for shared
    file systems), or any database URL."""
    if kind == "sqlite":
        return optuna.storages.RDBStorage(f"sqlite:///{folder / STUDY_FILES['sqlite']}")
    if kind == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(folder / STUDY_FILES["journal"])))
    return optuna.storages.RDBStorage(kind)
