"""``EnsembleClassifier``: any scikit-learn classifiers, fused by a combiner."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from combiners import TemperatureScaling
from ensembles import metrics, uncertainty
from ensembles._base import (
    ENSEMBLE_CONSTRAINTS,
    PREFIT,
    BaseEnsemble,
)
from members.data import check_sample_weight
from members.params import StrOptions
from members.tasks import CLASSIFICATION, PriorShift


class EnsembleClassifier(ClassifierMixin, BaseEnsemble):
    """Train several classifiers and fuse their class probabilities.

    Parameters
    ----------
    members : list of (str, estimator)
        Named members, as in ``StackingClassifier(estimators=...)``: ``NeuralClassifier``\\ s or
        any scikit-learn classifier. A member set to ``"drop"`` is left out.
    combiner : BaseCombiner, optional
        Fusion rule. ``None`` (the default): weights learned on held-out member outputs
        (:class:`~combiners.WeightedCombiner`, minimising their NLL over the simplex), so an
        ensemble is not dragged below its best member by weak ones, as the plain mean is when
        one member is much better than the rest (measured: ``benchmarks/defaults.py``); the
        plain mean with one member, or with fewer than 250 rows and no ``cv``.
        ``MeanCombiner()`` is soft voting, the old default, trained once per member.
    cv : int, float, CV splitter, list of splits, "prefit" or None, default=None
        Where the combiner (and calibration) gets member outputs the members did not train on.
        An int K: K-fold cross-fitting (stratified, shuffled): out-of-fold outputs for every
        sample, then the members are refit on all the data (K + 1 trainings each). A float:
        that fraction is held out and the members are trained once on the rest (blending, no
        refit). A scikit-learn splitter (``groups`` reach it through metadata routing) or a
        list of ``(train, test)`` index pairs: its folds, as with an int. ``"prefit"``: the
        members are already fitted; ``fit(X, y)`` only fits the combiner on ``(X, y)``.
        ``None``: with the default combiner, a fifth of the rows held out (stratified), then the
        members refit on every row: each network fine-tuned from itself (``init=``) for a
        quarter of its epochs, so that it stays the network whose held-out outputs the weights
        were learned on (about 1.05 trainings each; any other member is trained again, and a
        network that missed a class on the other rows trained from scratch); with a given
        combiner that learns (or calibration), 5 folds; a fixed rule (averaging, voting) trains
        each member once and costs nothing extra. Whenever there are held-out outputs (a
        combiner that learns or calibration, or a ``cv`` other than ``None`` and ``"prefit"``),
        the fused ensemble and each member are scored on them (``held_out_scores_``), and a
        ``UserWarning`` names the best member when the ensemble is worse than it beyond the
        noise of those rows (2 standard errors of the paired difference, in NLL or accuracy).
    calibration : {None, "temperature"}, default=None
        ``"temperature"`` fits one temperature on held-out fused probabilities (cross-fitted
        when the combiner learns, so it never sees the combiner's own training fit); accuracy
        is unchanged, calibration improves (averaged ensembles tend to be under-confident).
    class_weight : "balanced", dict or None, default=None
        Weights of the classes (scikit-learn's meaning): ``"balanced"`` gives class ``c`` the
        weight ``n_samples / (n_classes * n_c)`` (counts weighted by ``sample_weight``). The
        members, the combiner and the calibration learn the unweighted problem, and the fused,
        calibrated probabilities are shifted to the weights' prior, ``p_c w_c / sum_k p_k w_k``
        (:class:`members.tasks.PriorShift`; see ``NeuralClassifier``'s ``class_weight`` for
        why and what was measured); ``class_weight_`` holds the weights. For imbalanced data,
        where the rare classes matter.
    sub_networks : {"split", "fused"}, default="split"
        What a member that is an ensemble inside one network (:mod:`ensembles.efficient`'s
        estimators, or a network whose ``module`` is :class:`members.Packed` and the like)
        gives the combiner. ``"split"``: each of its sub-networks as a member of its own, named
        ``name[0]``, ``name[1]``..., all from one forward pass, so learned weights, selection and
        stacking see them apart (and ``predict_uncertainty`` counts their disagreement);
        ``"fused"``: its own mixture, as one member. Split by default: the sub-networks are
        the members their methods were designed to average, and a learned combiner can weigh
        them against the pool's other members.
    batched : {"auto", True, False}, default="auto"
        Members that differ only in ``random_state`` (e.g. from :func:`members.replicate`) are
        trained together by the batched engine (:func:`members.fit_batched`): one forward,
        backward and optimizer step for all of them, each member still its own model.
        ``"auto"`` does so where it is faster: on a GPU, and on the CPU for networks of up to
        :data:`members.batched.AUTO_CPU_MAX_PARAMETERS` parameters. ``False``: one after another.
    checkpoint_dir : str or path, optional
        Store every member (and fold member) as soon as it is trained. If a later member fails,
        or the fit is interrupted, calling ``fit`` again with the same members and data loads
        the stored ones instead of retraining them; a changed member, seed or data is retrained.
        Members are kept in the safe format of :mod:`members.persistence` (no pickle); reading
        one trusts only the types of the member being trained, so a replaced entry runs no
        code, and an entry that cannot be read is trained again, with a warning.
    n_jobs : int, optional
        How many member trainings run at once, scikit-learn's meaning: ``None`` is 1 unless a
        ``joblib.parallel_config`` says otherwise, ``-1`` uses every core. Every training is a
        task (each member, each member on each cross-fitting fold, each refit; a batched group
        is one task), run by joblib: loky processes by default, a Ray or Dask cluster under
        ``joblib.parallel_config(backend="ray" | "dask")``. The workers share the caller's torch
        threads (``n_threads // n_jobs`` each, at least one) and train under its torch switches
        (oneDNN, deterministic algorithms, matmul precision); on one machine with several GPUs
        each gets a GPU of its own. Results equal ``n_jobs=1``'s bit for bit wherever a
        member's training does not depend on its thread count (fully connected networks,
        scikit-learn members). A convolution's CPU weight gradients (oneDNN) are summed in a
        thread-dependent order, so conv networks trained by 1-thread workers drift from ones
        trained sequentially on 2 threads (measured: probabilities up to 0.23 apart after 20
        epochs of ``cnn1d``, the same ensemble accuracy); with ``torch.set_num_threads(1)``
        before ``fit`` every task trains on one thread either way, and they match bit for bit.
    random_state : int, RandomState or None, default=None
        When set, every member whose own ``random_state`` is ``None`` gets a distinct seed drawn
        from it, and the folds are shuffled reproducibly.
    verbose : bool, default=False
        Print which member is being trained.

    Attributes
    ----------
    members_ : list of estimators
        Fitted members, in order (``"drop"`` ones left out).
    named_members_ : dict
        Fitted members by name.
    output_names_ : list of str
        The name of each output the combiner fuses, in order: a member's name, or
        ``name[i]`` for each sub-network of a member that splits (``sub_networks``);
        ``member_predictions``, the combiner's weights and ``held_out_scores_`` follow it.
    combiner_ : BaseCombiner
    calibrator_ : TemperatureScaling or None
    class_weight_ : ndarray of shape (n_classes,) or None
        The classes' weights that shift the fused probabilities (``class_weight``).
    oof_predictions_ : ndarray of shape (n_members, n_held_out, n_classes)
        The held-out member outputs the combiner was fitted on (only when one was needed).
    oof_index_ : ndarray of shape (n_held_out,)
        Rows of the training data that ``oof_predictions_`` belong to.
    refit_ : {"warm", "full"} or None
        How the members were refit on all the rows after giving held-out outputs: ``"warm"``
        (the default plan: each network a short fine-tune of the member trained on the other
        rows; it keeps the parameters it was given, not the fine-tune's ``init`` and epochs),
        ``"full"`` (trained again, after cross-fitting) or ``None`` (not refit: trained once,
        or ``"prefit"``).
    held_out_scores_ : dict
        ``{name: {"nll": ..., "accuracy": ...}}`` for each member and for ``"ensemble"`` (the
        fused outputs, a learned combiner cross-fitted) on those rows (only when there are
        held-out outputs); ``pandas.DataFrame(held_out_scores_).T`` prints it as a table.
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from members import NeuralClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> ens = EnsembleClassifier(
    ...     [("mlp", NeuralClassifier(max_epochs=30)), ("lr", LogisticRegression(max_iter=1000))],
    ...     random_state=0,
    ... ).fit(X, y)
    >>> ens.member_predictions(X).shape
    (2, 150, 3)
    >>> ens.score(X, y) > 0.9
    True
    """

    task = CLASSIFICATION
    classes_: np.ndarray  # set by the task's encoding (BaseEnsemble._validate_targets)
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **ENSEMBLE_CONSTRAINTS,
        "calibration": [StrOptions({"temperature"}), None],
        "class_weight": [StrOptions({"balanced"}), dict, None],
    }

    def _validate_targets(
        self, X: Any, y: Any, active: list[tuple[str, Any]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        X, y, encoded = super()._validate_targets(X, y, active)
        if self.cv == PREFIT:
            # prefit members may know classes that the data for the combiner happens to lack
            known = [m.classes_ for _, m in active if hasattr(m, "classes_")]
            self.classes_ = np.unique(np.concatenate([self.classes_, *known]))
            encoded = np.searchsorted(self.classes_, y)
        return X, y, encoded

    def _fit_calibration(
        self,
        predictions: np.ndarray | None,
        targets: np.ndarray | None,
        X: Any,
        extra: np.ndarray | None,
        sample_weight: np.ndarray | None = None,
        fused: np.ndarray | None = None,
    ) -> None:
        self.calibrator_: TemperatureScaling | None = None
        if self.calibration == "temperature":
            # calibration makes _needs_held_out true, so held-out outputs are here
            assert predictions is not None and targets is not None and fused is not None
            self.calibrator_ = TemperatureScaling().fit(fused, targets, sample_weight)

    def _fuse(self, predictions: np.ndarray, X: np.ndarray) -> np.ndarray:
        proba = super()._fuse(predictions, X)
        if self.calibrator_ is not None:
            proba = self.calibrator_.transform(proba)
        if self.class_weight_ is not None:
            with torch.no_grad():
                proba = PriorShift(self.class_weight_)(torch.from_numpy(proba)).numpy()
        return proba

    def predict_proba(self, X: Any) -> np.ndarray:
        """Fused (and calibrated) class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        return self._fused(X)

    def predict(self, X: Any) -> np.ndarray:
        """The class with the highest fused probability.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]  # type: ignore[no-any-return]

    def predict_uncertainty(self, X: Any) -> pd.DataFrame:
        """Each sample's uncertainty in nats.

        ``total`` is the entropy of the fused probabilities ``predict_proba`` returns,
        ``aleatoric`` the members' expected entropy and ``epistemic`` their mutual information
        (the entropy of the members' mixture minus the expected entropy, which grows where they
        disagree).

        The mixture is weighted as the combiner weights (equally for rules that are not a
        weighted mean, see :mod:`ensembles.uncertainty`); without calibration and with a
        weighted mean, ``total == aleatoric + epistemic``. Identical members have no epistemic
        uncertainty.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.

        Returns
        -------
        DataFrame of shape (n_samples, 3)
            Columns ``total``, ``aleatoric`` and ``epistemic``, in nats.
        """
        check_is_fitted(self, "members_")
        X = self._validate_X(X)
        return pd.DataFrame(self._uncertainty(self._predict_members(X), X))

    def _uncertainty(
        self, predictions: np.ndarray, X: np.ndarray, fused: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """The parts of :meth:`predict_uncertainty` from member ``predictions`` on ``X``
        (``fused``: their fusion, when the caller has it already)."""
        weights = uncertainty.member_weights(self.combiner_, len(predictions))
        if fused is None:
            fused = self._fuse(predictions, X)
        return uncertainty.classification_uncertainty(predictions, fused, weights)

    def evaluate(
        self, X: Any, y: Any, X_ood: Any = None, *, sample_weight: Any = None
    ) -> pd.DataFrame:
        """One row per member and one for the ensemble: accuracy, NLL, Brier, ECE, disagreement.

        ``disagreement`` is a member's mean share of differing top-class predictions against the
        other members; on the ensemble row, the mean over all member pairs.

        With out-of-distribution inputs ``X_ood``, also how well each uncertainty score tells
        them from ``X`` (out-of-distribution the positive class): ``auroc_<score>`` and
        ``aupr_<score>`` for the scores of :meth:`predict_uncertainty`. A member's only score is
        its entropy (``total``, all aleatoric); its ``epistemic`` columns are NaN.
        ``sample_weight`` weighs the rows of ``X`` in every metric (not the rows of ``X_ood``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True targets of those rows.
        X_ood : array-like of shape (n_ood, n_features), default=None
            Out-of-distribution rows; when given, the table has the columns ``auroc_<score>`` and
            ``aupr_<score>``.
        sample_weight : array-like of shape (n_samples,), default=None
            Each row's weight in every metric.

        Returns
        -------
        DataFrame
            One row per member and one named ``"ensemble"``.
        """
        check_is_fitted(self, "members_")
        X = self._validate_X(X)
        predictions = self._predict_members(X)
        encoded = metrics.encode_labels(y, self.classes_)
        weights = check_sample_weight(sample_weight, X)
        rows = {
            name: metrics.classification_report(encoded, proba, weights)
            for name, proba in zip(self.output_names_, predictions, strict=True)
        }
        fused = self._fuse(predictions, X)
        rows["ensemble"] = metrics.classification_report(encoded, fused, weights)
        pairwise = metrics.disagreement(predictions, weights)
        n_members = len(predictions)
        others = max(n_members - 1, 1)
        for name, row in zip(self.output_names_, pairwise, strict=True):
            rows[name]["disagreement"] = float(row.sum() / others)
        rows["ensemble"]["disagreement"] = float(pairwise.sum() / max(n_members * others, 1))
        if X_ood is not None:
            X_out = self._validate_X(X_ood)
            outside = self._predict_members(X_out)
            scores_in = self._uncertainty(predictions, X, fused)
            scores_out = self._uncertainty(outside, X_out)
            for score in uncertainty.COMPONENTS:
                report = metrics.ood_report(scores_in[score], scores_out[score])
                for key, value in report.items():
                    rows["ensemble"][f"{key}_{score}"] = value
            for index, name in enumerate(self.output_names_):
                alone = metrics.ood_report(
                    uncertainty.entropy(predictions[index]), uncertainty.entropy(outside[index])
                )
                for score in uncertainty.COMPONENTS:
                    for key, value in alone.items():
                        rows[name][f"{key}_{score}"] = value if score != "epistemic" else np.nan
        return pd.DataFrame.from_dict(rows, orient="index")
