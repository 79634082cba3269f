"""Where a sweep's Optuna study lives (no Ray needed: the report reads it too)."""

from __future__ import annotations

from pathlib import Path

import optuna

from sweep.folder import SweepFolder


def study_file(kind: str, folder: Path) -> Path | None:
    """The study's file in the sweep folder for ``--storage`` sqlite or journal; None for a URL (a server)."""
    files = {"sqlite": SweepFolder(folder).optuna_db, "journal": SweepFolder(folder).optuna_journal}
    return files.get(kind)


def study_storage(kind: str, folder: Path):
    """Where the Optuna study lives: SQLite in the sweep folder (`optuna-dashboard sqlite:///<folder>/optuna.db`),
    Optuna's journal file there (SQLite's locking is unreliable over NFS; the journal is documented for shared
    file systems), or any database URL."""
    if kind == "sqlite":
        return optuna.storages.RDBStorage(f"sqlite:///{study_file(kind, folder)}")
    if kind == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(study_file(kind, folder))))
    return optuna.storages.RDBStorage(kind)
