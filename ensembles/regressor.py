"""``EnsembleRegressor``: any scikit-learn regressors, fused by a combiner."""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any, ClassVar, Literal, overload

import numpy as np
import pandas as pd
from sklearn.base import RegressorMixin
from sklearn.utils.validation import check_is_fitted

from combiners import VarianceScaling
from ensembles import metrics, uncertainty
from ensembles._base import (
    ENSEMBLE_CONSTRAINTS,
    BaseEnsemble,
    naming,
)
from members.data import check_sample_weight, to_numpy
from members.params import StrOptions
from members.tasks import REGRESSION, check_member_output


class EnsembleRegressor(RegressorMixin, BaseEnsemble):
    """Train several regressors and fuse their predictions.

    Parameters and attributes are those of :class:`EnsembleClassifier` without ``classes_``;
    the default combiner learns non-negative weights summing to one that minimise the
    held-out squared error (Breiman's stacked regression), ``held_out_scores_`` holds RMSEs,
    and an int ``cv`` makes plain (unstratified, shuffled) K folds. ``y`` may be 1-D or
    ``(n_samples, n_outputs)``.

    The ensemble is also a predictive distribution (:mod:`ensembles.uncertainty`): a mixture of
    its members', weighted as the combiner weights. A member that predicts a standard deviation
    (``NeuralRegressor(loss="gaussian")``, or any regressor whose ``predict`` takes
    ``return_std``, such as ``BayesianRidge`` or ``GaussianProcessRegressor``) brings its
    variance (aleatoric); every member's distance from the ensemble's prediction adds to the
    epistemic part, so point-prediction members (Ridge, gradient boosting, MSE networks) count
    there only. See :meth:`predict` (``return_std=True``), :meth:`predict_interval` and
    :meth:`predict_uncertainty`.

    Parameters
    ----------
    members : list of (str, estimator)
        As in :class:`EnsembleClassifier`.
    combiner : BaseCombiner, optional
        As in :class:`EnsembleClassifier`.
    cv : int, float, CV splitter, list of splits, "prefit" or None, default=None
        As in :class:`EnsembleClassifier`.
    calibration : {None, "variance"}, default=None
        ``"variance"`` fits one scale per output of the predictive variance on held-out member
        outputs (:class:`~combiners.VarianceScaling`, minimising their Gaussian NLL; cross-fitted
        when the combiner learns), so that intervals cover what they say (Kuleshov et al.,
        2018). Predictions are unchanged. Held-out outputs come from ``cv`` as for a learned
        combiner (with the default combiner, the held-out fifth; with another, 5 folds).
    class_weight : None
        A classifier's parameter (:class:`EnsembleClassifier`); a regressor takes only None.
    sub_networks : {"split", "fused"}, default="split"
        As in :class:`EnsembleClassifier` (a split member's sub-networks count as point
        predictions: their own variances are not read).
    batched : {"auto", True, False}, default="auto"
        As in :class:`EnsembleClassifier`.
    checkpoint_dir : str or path, optional
        As in :class:`EnsembleClassifier`.
    n_jobs : int, optional
        As in :class:`EnsembleClassifier`.
    random_state : int, RandomState or None, default=None
        As in :class:`EnsembleClassifier`.
    verbose : bool, default=False
        As in :class:`EnsembleClassifier`.

    Attributes
    ----------
    calibrator_ : VarianceScaling or None
    output_names_ : list of str
        As in :class:`EnsembleClassifier`.
    refit_ : {"warm", "full"} or None
        As in :class:`EnsembleClassifier`.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sklearn.linear_model import Ridge
    >>> from members import NeuralRegressor
    >>> X, y = make_regression(n_samples=200, n_features=5, noise=5.0, random_state=0)
    >>> ens = EnsembleRegressor(
    ...     [("mlp", NeuralRegressor(max_epochs=30)), ("ridge", Ridge())], random_state=0
    ... ).fit(X, y)
    >>> ens.predict(X[:4]).shape
    (4,)
    >>> ens.score(X, y) > 0.9
    True
    >>> mean, std = ens.predict(X[:4], return_std=True)
    >>> std.shape
    (4,)
    """

    task = REGRESSION
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **ENSEMBLE_CONSTRAINTS,
        "calibration": [StrOptions({"variance"}), None],
    }

    def __setstate__(self, state: dict[str, Any]) -> None:
        # saves from before regressors had calibration: none, and no calibrator when fitted
        defaults: dict[str, Any] = {"calibration": None}
        if "members_" in state:
            defaults["calibrator_"] = None
        super().__setstate__({**defaults, **state})

    def _held_out_member(
        self, name: str, member: Any, X: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        if self.calibration != "variance":
            return super()._held_out_member(name, member, X)
        return member_moments(member, X, self.n_outputs_, name)

    def _fit_calibration(
        self,
        predictions: np.ndarray | None,
        targets: np.ndarray | None,
        X: Any,
        extra: np.ndarray | None,
        sample_weight: np.ndarray | None = None,
        fused: np.ndarray | None = None,
    ) -> None:
        self.calibrator_: VarianceScaling | None = None
        if self.calibration == "variance":
            # calibration makes _needs_held_out true, so held-out outputs are here
            assert (
                predictions is not None
                and targets is not None
                and fused is not None
                and extra is not None
            )
            weights = uncertainty.member_weights(self.combiner_, len(predictions))
            parts = uncertainty.regression_uncertainty(predictions, extra, fused, weights)
            self.calibrator_ = VarianceScaling().fit(fused, parts["total"], targets, sample_weight)

    @overload
    def predict(self, X: Any, return_std: Literal[False] = ...) -> np.ndarray: ...

    @overload
    def predict(self, X: Any, return_std: Literal[True]) -> tuple[np.ndarray, np.ndarray]: ...

    def predict(
        self, X: Any, return_std: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Fused predictions, 1-D when the training targets were 1-D.

        With ``return_std=True``, also the standard deviation of the ensemble's predictive
        distribution (its mixture's, calibrated when ``calibration="variance"``), of the same
        shape, as scikit-learn's ``GaussianProcessRegressor`` returns it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.
        return_std : bool, default=False
            Also return the predictive standard deviation.

        Returns
        -------
        mean : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The fused predictions.
        std : ndarray of the shape of ``mean``
            Only with ``return_std=True``.
        """
        if not return_std:
            return self._shaped(self._fused(X))
        mean, parts = self._distribution(X)
        return self._shaped(mean), self._shaped(np.sqrt(parts["total"]))

    def predict_interval(self, X: Any, coverage: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """The central ``coverage`` interval of each prediction.

        From a Gaussian with the predictive distribution's mean and variance (see
        :meth:`predict`). Honest coverage needs a calibrated variance
        (``calibration="variance"``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.
        coverage : float, default=0.9
            Share of the predictive distribution between the bounds, in (0, 1).

        Returns
        -------
        lower : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The lower bounds.
        upper : ndarray of the shape of ``lower``
            The upper bounds.
        """
        coverage = uncertainty.check_coverage(coverage)
        mean, parts = self._distribution(X)
        lower, upper = uncertainty.gaussian_interval(mean, np.sqrt(parts["total"]), coverage)
        return self._shaped(lower), self._shaped(upper)

    def predict_uncertainty(self, X: Any) -> pd.DataFrame:
        """Each sample's predictive variance and its parts.

        ``total`` = ``aleatoric`` (the members' mean variance, the noise they predict) +
        ``epistemic`` (the spread of their predictions around the ensemble's), all scaled by the
        calibration.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.

        Returns
        -------
        DataFrame
            Columns ``total``, ``aleatoric`` and ``epistemic`` (one set per output, suffixed
            ``_0``, ``_1``, ... with several outputs).
        """
        _, parts = self._distribution(X)
        if self.n_outputs_ == 1:
            return pd.DataFrame({key: value[:, 0] for key, value in parts.items()})
        return pd.DataFrame(
            {
                f"{key}_{output}": value[:, output]
                for key, value in parts.items()
                for output in range(self.n_outputs_)
            }
        )

    def _distribution(self, X: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The fused prediction and the variance parts, ``(n_samples, n_outputs)`` each."""
        check_is_fitted(self, "members_")
        X = self._validate_X(X)
        return self._moments(*self._member_moments(X), X)

    def _member_moments(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        means, variances = [], []
        for name, member in self._output_members(self.named_members_.items(), X):
            with naming(name):
                mean, variance = member_moments(member, X, self.n_outputs_, name)
            means.append(mean)
            variances.append(variance)
        return np.stack(means), np.stack(variances)

    def _moments(
        self, means: np.ndarray, variances: np.ndarray, X: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        fused = self._fuse(means, X)
        weights = uncertainty.member_weights(self.combiner_, len(means))
        parts = uncertainty.regression_uncertainty(means, variances, fused, weights)
        if self.calibrator_ is not None:
            parts = {key: self.calibrator_.transform(value) for key, value in parts.items()}
        return fused, parts

    @property
    def target_ndim(self) -> int:
        """The number of dimensions of what :meth:`predict` returns.

        Returns
        -------
        int
            1 for targets fitted as ``(n_samples,)``, 2 for ``(n_samples, n_outputs)``.
        """
        check_is_fitted(self, "members_")
        return int(self._y_ndim)

    def _shaped(self, fused: np.ndarray) -> np.ndarray:
        return fused.ravel() if self._y_ndim == 1 else fused

    def evaluate(self, X: Any, y: Any, *, sample_weight: Any = None) -> pd.DataFrame:
        """One row per member and one for the ensemble: point and distribution metrics.

        RMSE, MAE, R², and the predictive distribution's Gaussian NLL, CRPS, ``coverage`` of the
        central 90 % interval and its mean ``width``
        (:func:`ensembles.metrics.distribution_report`).
        A point-prediction member has no distribution: its CRPS is its absolute error, its
        other distribution columns are NaN.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True targets of those rows.
        sample_weight : array-like of shape (n_samples,), default=None
            Each row's weight in every metric.

        Returns
        -------
        DataFrame
            One row per member and one named ``"ensemble"``.
        """
        check_is_fitted(self, "members_")
        X = self._validate_X(X)
        means, variances = self._member_moments(X)
        target = np.asarray(to_numpy(y), dtype=np.float64)
        target = target.reshape(len(target), -1)
        weights = check_sample_weight(sample_weight, X)
        rows = {}
        for name, mean, variance in zip(self.output_names_, means, variances, strict=True):
            rows[name] = metrics.regression_report(target, mean, weights)
            if name in self.named_members_ and predicts_std(self.named_members_[name]):
                rows[name].update(metrics.distribution_report(target, mean, variance, weights))
            else:
                rows[name].update(
                    gaussian_nll=np.nan,
                    crps=metrics.crps(target, mean, np.zeros_like(mean), weights),
                    coverage=np.nan,
                    width=np.nan,
                )
        fused, parts = self._moments(means, variances, X)
        rows["ensemble"] = {
            **metrics.regression_report(target, fused, weights),
            **metrics.distribution_report(target, fused, parts["total"], weights),
        }
        return pd.DataFrame.from_dict(rows, orient="index")

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def predicts_std(member: Any) -> bool:
    """Whether ``member.predict(X, return_std=True)`` gives a predictive standard deviation:
    a member's ``predicts_std`` says so where it has one (``NeuralRegressor``), otherwise
    whether its ``predict`` takes ``return_std`` (``BayesianRidge``,
    ``GaussianProcessRegressor``...)."""
    says = getattr(member, "predicts_std", None)
    if says is not None:
        return bool(says)
    try:
        return "return_std" in inspect.signature(member.predict).parameters
    except (TypeError, ValueError):
        return False


def member_moments(
    member: Any, X: np.ndarray, n_outputs: int, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Member ``name``'s predictive mean and variance on ``X``, each ``(n_samples,
    n_outputs)``, checked; the variance is zero for a point-prediction member."""
    if not predicts_std(member):
        mean = REGRESSION.member_output(member, X, SimpleNamespace(n_outputs_=n_outputs), name)
        return mean, np.zeros_like(mean)
    output = member.predict(X, return_std=True)
    if not (isinstance(output, tuple) and len(output) == 2):
        raise ValueError(
            f"member {name!r}: predict(X, return_std=True) must return (mean, std); got "
            f"{type(output).__name__}"
        )
    shape = (len(X),) if n_outputs == 1 and np.ndim(output[0]) == 1 else (len(X), n_outputs)
    mean = check_member_output(output[0], name, "predict", shape).reshape(len(X), n_outputs)
    std = check_member_output(output[1], name, "predict (std)", shape).reshape(len(X), n_outputs)
    if (std < 0).any():
        raise ValueError(f"member {name!r}: predict returned a negative standard deviation")
    return mean, std**2
