"""Where a pool search keeps its study: an SQLite or journal file, a URL or a storage object."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import joblib
import numpy as np

# the study's attribute that says which data, splits and objectives it belongs to
DATA_FINGERPRINT = "data_fingerprint"


def open_study(
    search: Any,
    optuna: Any,
    objectives: tuple[str, ...],
    X: np.ndarray,
    y: np.ndarray,
    splits: list[tuple[Any, Any]],
    weights: np.ndarray | None,
) -> Any:
    """The Optuna study of ``search`` (an :class:`~ensembles.EnsembleSearchClassifier` or
    ``Regressor``) in its ``storage``: created, or found and checked to be of the same data,
    splits and objectives."""
    storage = search.storage
    if isinstance(storage, str | os.PathLike) and "://" not in str(storage):
        storage = file_storage(optuna, Path(storage))
    data = (X, y) if weights is None else (X, y, weights)  # unweighted: as before
    fingerprint = joblib.hash(
        (type(search).__name__, *data, [(train, test) for train, test in splits], objectives)
    )
    optuna.logging.set_verbosity(optuna.logging.INFO if search.verbose else optuna.logging.WARNING)
    study = optuna.create_study(
        storage=storage,
        study_name=search.study_name,
        sampler=optuna.samplers.RandomSampler(0),  # each ask gets its own (SearchLoop)
        directions=["minimize"] * len(objectives),
        load_if_exists=True,
    )
    stored = study.user_attrs.get(DATA_FINGERPRINT)
    if stored is None:
        study.set_user_attr(DATA_FINGERPRINT, fingerprint)
    elif stored != fingerprint:
        raise ValueError(
            f"storage={str(search.storage)!r} holds a study named {search.study_name!r} of "
            "another search (other data, splits, objectives or random_state); give another "
            "study_name or storage to start a new search, or the same data and "
            "random_state to continue that one"
        )
    return study


def file_storage(optuna: Any, path: Path) -> Any:
    """An SQLite file (``.db``, ``.sqlite``, ``.sqlite3``) or an Optuna journal (any other)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".db", ".sqlite", ".sqlite3"):
        return f"sqlite:///{path.resolve()}"
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(path)))
