"""``TemperatureScaling``: one temperature fitted on held-out probabilities (Guo et al., 2017)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from combiners._validation import (
    check_predictions,
    check_sample_weights,
    check_targets,
    safe_log,
)
from combiners.metrics import check_proba

# log-temperature search range: T from about 0.007 to 150
LOG_T_BOUNDS = (-5.0, 5.0)


class TemperatureScaling(BaseEstimator):
    """Rescale probabilities as ``softmax(log p / T)`` with ``T`` minimising held-out NLL.

    One parameter, so it cannot change which class is most probable: accuracy is unchanged,
    while over- (``T > 1``) or under-confidence (``T < 1``, typical of averaged ensembles) is
    corrected.

    Attributes
    ----------
    temperature_ : float

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 500)
    >>> sharp = np.full((500, 3), 0.01); sharp[np.arange(500), y] = 0.98
    >>> noisy = np.where(rng.uniform(size=500) < 0.7, y, (y + 1) % 3)
    >>> TemperatureScaling().fit(sharp, noisy).temperature_ > 1  # overconfident: T above 1
    True
    """

    def fit(self, proba: Any, y: Any, sample_weight: Any = None) -> TemperatureScaling:
        """Fit the temperature that minimises the (weighted) NLL.

        Parameters
        ----------
        proba : array-like of shape (n_samples, n_classes)
            Class probabilities, ``n_classes >= 2``.
        y : array-like of shape (n_samples,)
            Class indices.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row in the NLL.

        Returns
        -------
        self
            With ``temperature_`` set.
        """
        values = self._proba(proba)
        _, labels = check_targets(values[None], y, type(self).__name__)
        logp = safe_log(values)
        weights = check_sample_weights(sample_weight, len(labels))
        rows = np.arange(len(labels))

        def nll(log_t: float) -> float:
            true = log_softmax(logp / np.exp(log_t), axis=1)[rows, labels]
            return float(-np.average(true, weights=weights))

        result = minimize_scalar(nll, bounds=LOG_T_BOUNDS, method="bounded")
        self.temperature_ = float(np.exp(result.x))
        return self

    def transform(self, proba: Any) -> np.ndarray:
        """Calibrated probabilities.

        Parameters
        ----------
        proba : array-like of shape (n_samples, n_classes)
            Class probabilities.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            The probabilities with their log divided by ``temperature_``, renormalised.
        """
        check_is_fitted(self, "temperature_")
        logp = safe_log(self._proba(proba))
        return softmax(logp / self.temperature_, axis=1)  # type: ignore[no-any-return]

    @staticmethod
    def _proba(proba: Any) -> np.ndarray:
        """``proba`` through the one probability check, clipped to [0, 1] (a weighted mean of
        probabilities can pass 1 by a rounding error, 1 + 2e-16)."""
        values = check_predictions(np.asarray(proba)[None], name="proba")[0]
        return np.clip(check_proba(values, "proba"), 0.0, 1.0)
