"""The objectives a pool search judges its trials by, and the Pareto front over them."""

from __future__ import annotations

import numpy as np
import pandas as pd

CLASSIFIER_OBJECTIVES = ("nll", "error", "latency", "parameters")
REGRESSOR_OBJECTIVES = ("rmse", "latency", "parameters")


def trials_pareto(trials: pd.DataFrame, objectives: tuple[str, ...]) -> pd.DataFrame:
    """The completed first-round trials no other trial beats on every objective, best first."""
    done = trials[(trials["state"] == "COMPLETE") & trials["seed_of"].isna()]
    return pareto_front(done, [objective_column(name) for name in objectives])


def pareto_front(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The rows no other row beats on every one of ``columns`` (all minimised), sorted by the
    first column.

    Examples
    --------
    >>> rows = pd.DataFrame({"nll": [0.1, 0.2, 0.3, 0.25], "latency_ms": [9.0, 4.0, 1.0, 5.0]})
    >>> pareto_front(rows, ["nll", "latency_ms"])["nll"].tolist()
    [0.1, 0.2, 0.3]
    """
    values = rows[columns].to_numpy(dtype=float)
    keep = [
        not np.any(np.all(values <= row, axis=1) & np.any(values < row, axis=1)) for row in values
    ]
    return rows[keep].sort_values(columns[0]).reset_index(drop=True)


def objective_column(objective: str) -> str:
    return "latency_ms" if objective == "latency" else objective
