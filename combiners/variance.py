"""``VarianceScaling``: one variance scale per output, fitted on held-out predictions."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from combiners._validation import check_predictions, check_sample_weights

# variances below this share of the targets' variance count as this (a lone point member)
RELATIVE_FLOOR = 1e-9


class VarianceScaling(BaseEstimator):
    """Rescale predictive variances as ``scale * variance``.

    The regression counterpart of :class:`TemperatureScaling` (Kuleshov et al., 2018,
    recalibrate a regressor's predictive distribution on held-out data; here with one
    parameter per output).

    ``scale_`` minimises the Gaussian negative log-likelihood of held-out targets, which has a
    closed form: the mean of ``(y - mean)^2 / variance``. It cannot move a prediction: only
    the width of its intervals changes. ``scale_ > 1`` widens intervals that were too narrow
    (typical of networks that fit their training data closely).

    Attributes
    ----------
    scale_ : ndarray of shape (n_outputs,)

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> mean = np.zeros((1000, 1)); y = rng.normal(0.0, 2.0, (1000, 1))
    >>> scaling = VarianceScaling().fit(mean, np.ones((1000, 1)), y)  # variance 1, truly 4
    >>> scaling.scale_.round(1)
    array([3.8])
    """

    def fit(self, mean: Any, variance: Any, y: Any, sample_weight: Any = None) -> VarianceScaling:
        """Fit one variance scale per output that minimises the (weighted) Gaussian NLL.

        Parameters
        ----------
        mean : array-like of shape (n_samples, n_outputs) or (n_samples,)
            Predicted means.
        variance : array-like of the shape of ``mean``
            Predicted variances.
        y : array-like of shape (n_samples, n_outputs) or (n_samples,)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row in the NLL.

        Returns
        -------
        self
            With ``scale_`` set.
        """
        mean, variance, target = self._check(mean, variance, y)
        weights = check_sample_weights(sample_weight, len(target))
        floor = RELATIVE_FLOOR * np.maximum(target.var(axis=0), 1e-12)
        ratios = (target - mean) ** 2 / np.maximum(variance, floor)
        self.scale_ = np.average(ratios, axis=0, weights=weights)
        self.scale_ = np.maximum(self.scale_, np.finfo(float).tiny)
        return self

    def transform(self, variance: Any) -> np.ndarray:
        """Calibrated variances.

        Parameters
        ----------
        variance : array-like of shape (n_samples, n_outputs) or (n_samples,)
            Predicted variances, as many outputs as in fit.

        Returns
        -------
        ndarray of the shape of ``variance``
            The variances times ``scale_``.
        """
        check_is_fitted(self, "scale_")
        values = np.asarray(variance, dtype=np.float64)
        columns = values.reshape(len(values), -1)
        if columns.shape[1] != len(self.scale_):
            raise ValueError(
                f"variance must have {len(self.scale_)} output(s) per sample, as in fit; got "
                f"shape {values.shape}"
            )
        return (columns * self.scale_).reshape(values.shape)  # type: ignore[no-any-return]

    @staticmethod
    def _check(mean: Any, variance: Any, y: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mean = check_predictions(np.asarray(mean).reshape(len(mean), -1)[None], name="mean")[0]
        variance = check_predictions(
            np.asarray(variance).reshape(len(variance), -1)[None], name="variance"
        )[0]
        target = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        if not (mean.shape == variance.shape == target.shape):
            raise ValueError(
                "mean, variance and y must have the same shape (n_samples, n_outputs); got "
                f"{mean.shape}, {variance.shape} and {target.shape}"
            )
        if (variance < 0).any():
            raise ValueError("variance must be non-negative")
        if len(target) < 2 or not np.isfinite(target).all():
            raise ValueError("y must hold at least 2 finite targets")
        return mean, variance, target
