"""Run a study: train (or reuse) the member pool, fuse it with every combiner at every size,
distill, search, and hand the rows to the report.

Members are trained through :mod:`ensembles.training` (cached in ``output/cache``), and every
ensemble is built from the public API of :mod:`ensembles` and :mod:`combiners`.

One class, :class:`Study`, of about 630 lines: its steps (pool, fusion at every size, guard,
shift, search, distillation) each read the pool and the splits the earlier ones made; the
configuration (:mod:`experiments.study.config`), the plots and the report are modules of their
own.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils import check_array, check_random_state

from combiners import BaseCombiner, MeanCombiner, TemperatureScaling, cross_fitted_fusion
from ensembles import (
    EnsembleClassifier,
    EnsembleRegressor,
    EnsembleSearchClassifier,
    EnsembleSearchRegressor,
    held_out_split,
    metrics,
)
from ensembles.guard import fusion_warning, held_out_scores
from ensembles.member_cache import load_or_train, stable_hash
from ensembles.training import MemberTask, run_tasks
from experiments.data import Dataset, load_dataset
from experiments.study import compare, report, soups
from experiments.study.config import ConfigError, StudyConfig, study_combiners
from members.tasks import TASKS, task_of

# Fewer held-out rows than this (or per class) make a learned combiner's fit mostly noise.
MIN_VALIDATION_ROWS = 50
MIN_PER_CLASS = 5


@dataclass
class _Pool:
    """Trained members and their outputs on the validation and test data."""

    names: list[str]
    estimators: list[Any]
    fit_seconds: list[float]
    predict_seconds: list[float]
    validation: np.ndarray  # (n_members, n_validation, n_outputs)
    test: np.ndarray  # (n_members, n_test, n_outputs)


class Study:
    """Run a :class:`StudyConfig` and write its report to ``output``.

    Parameters
    ----------
    config : StudyConfig
    output : str or path, optional
        The output folder; the config's ``output`` when ``None``. Trained members are cached in
        ``output/cache``, so running again (or with more members, sizes or combiners) reuses
        them.
    quiet : bool, default=False
        No progress bar (for CI and logs).
    verbose : bool, default=False
        Lightning's own per-member progress bars as well.
    n_jobs : int, optional
        Members trained at once (see :class:`ensembles.EnsembleClassifier`); the config's
        ``n_jobs`` when ``None``.
    """

    def __init__(
        self,
        config: StudyConfig,
        output: str | Path | None = None,
        *,
        quiet: bool = False,
        verbose: bool = False,
        n_jobs: int | None = None,
    ) -> None:
        self.config = config
        self.output = Path(config.output if output is None else output)
        self.quiet = quiet
        self.verbose = verbose
        self.n_jobs = config.n_jobs if n_jobs is None else n_jobs
        if self.n_jobs == 0:
            raise ConfigError("n_jobs must be a positive int, -1 (every core) or null; got 0")
        self.training = ""

    def run(self) -> pd.DataFrame:
        """Train (or reuse) the pool, evaluate every combiner and size, write the report."""
        config = self.config
        try:
            data = load_dataset(
                config.data.source,
                target=config.data.target,
                task=config.data.task,
                test_size=config.data.test_size,
                seed=config.data.seed,
            )
        except (ValueError, FileNotFoundError, ImportError) as error:
            raise ConfigError(str(error)) from None
        data, X_ood = self._hold_out_classes(data)
        self._check_task(data.task)
        self._prepare_output()
        classification = data.task == "classification"
        X_fit, y_fit, X_val, y_val = self._validation_split(data, classification)
        pool = self._train_pool(X_fit, y_fit)
        # the combiners' data; without validation data (fixed rules only) the training data
        # just tells the reference ensemble the classes
        X_comb, y_comb = (X_val, y_val) if len(X_val) else (X_fit, y_fit)
        # the reference only lays the members' outputs out on common classes: a fixed rule, so
        # that its fit predicts nothing (the default combiner learns, on every training row)
        reference = self._prefit(
            pool.names, pool.estimators, X_comb, y_comb, combiner=MeanCombiner()
        )
        pool.validation = reference.member_predictions(X_val) if len(X_val) else pool.validation
        X_test = check_array(data.X_test, dtype=(np.float64, np.float32))
        pool.test, pool.predict_seconds = reference.member_predictions(X_test, return_seconds=True)
        if classification:
            y_val_t = metrics.encode_labels(y_val, reference.classes_)
            y_test_t = metrics.encode_labels(data.y_test, reference.classes_)
        else:
            y_val_t, y_test_t = np.asarray(y_val), np.asarray(data.y_test)
        pairwise = report.pairwise_disagreement(pool.test, classification)

        rows = self._member_rows(pool, pairwise, y_test_t, classification)
        fused: dict[str, np.ndarray] = {}
        for name, combiner in study_combiners(self.config).items():
            combiner_rows, fused[name] = self._ensemble_rows(
                name,
                combiner,
                pool,
                pairwise,
                X_val,
                y_val_t,
                X_test,
                y_test_t,
                classification,
            )
            rows += combiner_rows
        student = None
        if self.config.distill is not None:
            student_row, student = self._distill(
                pool, X_fit, y_fit, X_comb, y_comb, X_test, y_test_t, classification
            )
            rows.append(student_row)
        searches: dict[str, pd.DataFrame] = {}
        if self.config.search is not None:
            search_rows, searches = self._search(data, X_test, y_test_t, classification)
            rows += search_rows
        shift = None
        if self.config.shift is not None:
            shift = self._shift(
                pool, reference, student, X_fit, X_val, y_val_t, X_test, y_test_t, classification
            )
        systems = None
        if self.config.compare is not None:
            systems = self._compare(pool, reference, X_fit, X_test, y_test_t, X_ood)
        soups = None
        if self.config.soup is not None:
            soups = self._soup(
                pool, reference, student, rows, X_fit, X_val, y_val, X_test, y_test_t
            )
        table = pd.DataFrame(rows)
        report.write_report(
            self.output,
            table,
            data,
            member_names=pool.names,
            member_outputs=pool.test,
            pairwise=pairwise,
            fused=fused,
            y_test=y_test_t,
            validation_size=config.data.validation_size,
            draws=config.draws,
            subsets=config.subsets,
            training=self.training,
            searches=searches,
            shift=shift,
            systems=systems,
            baseline=None if self.config.compare is None else self.config.compare.baseline,
            soups=soups,
        )
        return table

    # -- steps -------------------------------------------------------------------------------
    def _prepare_output(self) -> None:
        """Make the output folder and prove it writable before anything trains."""
        try:
            (self.output / "cache").mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.output):
                pass
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise ConfigError(
                f"output folder {str(self.output)!r} cannot be written: {reason}"
                + (f" ({error.filename})" if error.filename else "")
            ) from None

    def _check_task(self, task: str) -> None:
        check = TASKS[task].accepts
        for member in self.config.members:
            if not check(member.estimator):
                raise ConfigError(
                    f"members[{member.name}]: the data is a {task} task but "
                    f"{type(member.estimator).__name__} is not a "
                    f"{'classifier' if task == 'classification' else 'regressor'}"
                )
        if self.config.distill is not None and not check(self.config.distill.student):
            raise ConfigError(f"distill.student must be a {task} estimator")
        search = self.config.search
        if search is not None and search.estimator is not None and not check(search.estimator):
            raise ConfigError(
                f"search.estimator: the data is a {task} task but "
                f"{type(search.estimator).__name__} is not a "
                f"{'classifier' if task == 'classification' else 'regressor'}"
            )

    def _validation_split(
        self, data: Dataset, classification: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        fraction = self.config.data.validation_size
        if fraction == 0:
            return data.X_train, data.y_train, data.X_train[:0], data.y_train[:0]
        train, held = held_out_split(data.y_train, fraction, classification, self.config.seed)
        self._warn_small_validation(data.y_train[held], classification)
        return data.X_train[train], data.y_train[train], data.X_train[held], data.y_train[held]

    def _warn_small_validation(self, y_val: np.ndarray, classification: bool) -> None:
        """Warn when the rows held out for the learned combiners are too few to learn from."""
        learners = [name for name, c in study_combiners(self.config).items() if c.learns]
        if self.config.calibration:
            learners.append(f"calibration={self.config.calibration!r}")
        if not learners:
            return
        smallest = int(np.unique(y_val, return_counts=True)[1].min()) if classification else 0
        if len(y_val) < MIN_VALIDATION_ROWS or (classification and smallest < MIN_PER_CLASS):
            per_class = f", {smallest} in its smallest class" if classification else ""
            warnings.warn(
                f"data.validation_size={self.config.data.validation_size:g} holds out only "
                f"{len(y_val)} rows{per_class} for {', '.join(learners)}: too few to learn "
                f"from (aim for at least {MIN_VALIDATION_ROWS} rows and {MIN_PER_CLASS} per "
                "class); their results will be noisy",
                UserWarning,
                stacklevel=2,
            )

    def _train_pool(self, X_fit: np.ndarray, y_fit: np.ndarray) -> _Pool:
        """Every member of every seed, trained by the member-training service (one task
        each, cached in ``output/cache``); the entries that fine-tune another entry's network
        (``fine_tune``) once that network is trained."""
        from tqdm.auto import tqdm

        def member_name(entry: Any, seed: int) -> str:
            return f"{entry.name}_s{seed}" if len(entry.seeds) > 1 else str(entry.name)

        def task(entry: Any, seed: int, parent: Any) -> MemberTask:
            name = member_name(entry, seed)
            member = clone(entry.estimator)
            params = member.get_params()
            if "random_state" in params:
                member.set_params(random_state=seed)
            if "log_dir" in params:
                member.set_params(log_dir=str(self.output / "logs" / name))
            if "verbose" in params:
                member.set_params(verbose=self.verbose)
            if parent is not None:
                member.set_params(init=parent)
            return MemberTask([member], [f"member {name!r}"], [name], keys=[name])

        done: dict[str, list[Any]] = {}  # entry name -> its fitted members' results
        pending = list(self.config.members)
        total = sum(len(entry.seeds) for entry in pending)
        start = time.perf_counter()
        with tqdm(total=total, desc="members", unit="member", disable=self.quiet) as bar:

            def advance(task: MemberTask, fitted: list[Any]) -> None:
                bar.set_postfix_str(task.stems[0])
                bar.update()

            while pending:  # each wave: the entries whose network to start from is trained
                ready = [e for e in pending if e.fine_tune is None or e.fine_tune in done]
                wave = [
                    task(
                        entry, seed, done[entry.fine_tune][0].estimator if entry.fine_tune else None
                    )
                    for entry in ready
                    for seed in entry.seeds
                ]
                results = iter(
                    run_tasks(
                        wave,
                        X_fit,
                        y_fit,
                        checkpoint_dir=self.output / "cache",
                        on_done=advance,
                        n_jobs=self.n_jobs,
                    )
                )
                for entry in ready:
                    done[entry.name] = [next(results)[0] for _ in entry.seeds]
                pending = [entry for entry in pending if entry.name not in done]
        fitted_members = [fitted for entry in self.config.members for fitted in done[entry.name]]
        names = [member_name(entry, seed) for entry in self.config.members for seed in entry.seeds]
        reused = sum(fitted.reused for fitted in fitted_members)
        self.training = (
            f"The pool trained in {time.perf_counter() - start:.1f} s wall-clock with "
            f"n_jobs={self.n_jobs} ({reused} of {len(names)} members reused from the cache)."
        )
        empty = np.empty((len(names), 0, 0))
        return _Pool(
            names=names,
            estimators=[fitted.estimator for fitted in fitted_members],
            fit_seconds=[fitted.fit_seconds for fitted in fitted_members],
            predict_seconds=[],
            validation=empty,  # the outputs come once the pool is trained
            test=empty,
        )

    def _prefit(
        self, names: list[str], estimators: list[Any], X: np.ndarray, y: np.ndarray, **params: Any
    ) -> Any:
        """A prefit ensemble of ``estimators`` (with ``params``) fitted on ``(X, y)``; it lays
        their outputs out on common classes."""
        kind = EnsembleClassifier if task_of(estimators[0]).classification else EnsembleRegressor
        members = list(zip(names, estimators, strict=True))
        # a member that is an ensemble inside one network stays one member of the pool
        return kind(members, cv="prefit", sub_networks="fused", **params).fit(X, y)

    def _member_rows(
        self, pool: _Pool, pairwise: np.ndarray, y_test: np.ndarray, classification: bool
    ) -> list[dict[str, Any]]:
        others = max(len(pool.names) - 1, 1)
        rows = []
        for index, name in enumerate(pool.names):
            rows.append(
                report.row(
                    "member",
                    name,
                    members=name,
                    scores=report.scores(y_test, pool.test[index], classification),
                    disagreement=float(pairwise[index].sum() / others),
                    fit_s=pool.fit_seconds[index],
                    predict_s=pool.predict_seconds[index],
                )
            )
        return rows

    def _subsets(self, pool: _Pool, y_val: np.ndarray, classification: bool) -> dict[int, list]:
        n_members = len(pool.names)
        sizes = self.config.sizes or list(range(1, n_members + 1))
        if self.config.subsets == "greedy":
            order = self._greedy_order(pool, y_val, classification)
            return {size: [order[:size]] for size in sizes}
        rng = check_random_state(self.config.seed)
        subsets: dict[int, list] = {}
        for size in sizes:
            draws = 1 if size == n_members else self.config.draws
            subsets[size] = [
                sorted(rng.choice(n_members, size, replace=False)) for _ in range(draws)
            ]
        return subsets

    def _greedy_order(self, pool: _Pool, y_val: np.ndarray, classification: bool) -> list[int]:
        """Forward selection without replacement: each step adds the member that most improves
        the mean's validation NLL (RMSE for regression)."""
        key = "nll" if classification else "rmse"
        chosen: list[int] = []
        remaining = list(range(len(pool.names)))
        while remaining:
            fused = [pool.validation[chosen + [i]].mean(axis=0) for i in remaining]
            scores = [report.scores(y_val, output, classification)[key] for output in fused]
            chosen.append(remaining.pop(int(np.argmin(scores))))
        return chosen

    def _fuse(
        self,
        combiner: BaseCombiner,
        pool: _Pool,
        subset: Any,
        X_val: np.ndarray,
        y_val: np.ndarray,
        X_test: np.ndarray,
        classification: bool,
    ) -> tuple[np.ndarray, float, BaseCombiner]:
        """Fit ``combiner`` on the subset's validation outputs; fused test outputs, time, and
        the fitted combiner."""
        subset = list(subset)
        start = time.perf_counter()
        calibrate = classification and self.config.calibration == "temperature"
        fitted, calibrator = self._fit_fusion(combiner, pool, subset, X_val, y_val, calibrate)
        fused = fitted.combine(pool.test[subset], X=X_test)
        if calibrator is not None:
            fused = calibrator.transform(fused)
        return fused, time.perf_counter() - start, fitted

    @staticmethod
    def _fit_fusion(
        combiner: BaseCombiner,
        pool: _Pool,
        subset: list[int],
        X_val: np.ndarray,
        y_val: np.ndarray,
        calibrate: bool,
    ) -> tuple[BaseCombiner, TemperatureScaling | None]:
        """``combiner`` fitted on the subset's validation outputs, and (``calibrate``) a
        temperature fitted on its cross-fitted validation fusion."""
        validation = pool.validation[subset]
        if len(X_val):
            fitted = clone(combiner).fit(validation, y_val, X=X_val)
        else:
            fitted = clone(combiner).fit(np.zeros((len(subset), 0, pool.test.shape[2])))
        calibrator = None
        if calibrate:
            held_out = cross_fitted_fusion(fitted, validation, y_val, X_val)
            calibrator = TemperatureScaling().fit(held_out, y_val)
        return fitted, calibrator

    @staticmethod
    def _guard(
        name: str,
        fitted: BaseCombiner,
        pool: _Pool,
        X_val: np.ndarray,
        y_val: np.ndarray,
    ) -> str:
        """The fusion guard of the ensembles (:mod:`ensembles.guard`) on the full pool's
        validation outputs, ``fitted`` the combiner fitted on them: ``"worse than <member>"``
        (and a warning) when the fused pool is worse than its best member beyond the noise of
        those rows, ``""`` otherwise."""
        fused = cross_fitted_fusion(fitted, pool.validation, y_val, X_val)
        scores, worse = held_out_scores(pool.validation, fused, y_val, pool.names)
        if worse is None:
            return ""
        warnings.warn(
            fusion_warning(f"study combiner {name!r}", scores, worse, fitted, len(y_val)),
            UserWarning,
            stacklevel=2,
        )
        return f"worse than {worse}"

    def _ensemble_rows(
        self,
        name: str,
        combiner: BaseCombiner,
        pool: _Pool,
        pairwise: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        X_test: np.ndarray,
        y_test: np.ndarray,
        classification: bool,
    ) -> tuple[list[dict[str, Any]], np.ndarray]:
        """One row per size and draw; and the fused test outputs of the largest ensemble."""
        rows = []
        for size, subsets in sorted(self._subsets(pool, y_val, classification).items()):
            for draw, subset in enumerate(subsets):
                fused, seconds, fitted = self._fuse(
                    combiner, pool, subset, X_val, y_val, X_test, classification
                )
                guard = ""
                if draw == 0:
                    largest = fused
                    if len(subset) == len(pool.names) and len(X_val):
                        guard = self._guard(name, fitted, pool, X_val, y_val)
                pairs = pairwise[np.ix_(subset, subset)]
                rows.append(
                    report.row(
                        "ensemble",
                        f"{name}[{size}]",
                        combiner=name,
                        # an AutoCombiner says what it chose: "auto (weighted)"
                        fused_by=str(fitted),
                        guard=guard,
                        size=size,
                        draw=draw,
                        members=" ".join(pool.names[i] for i in subset),
                        scores=report.scores(y_test, fused, classification),
                        disagreement=float(pairs.sum() / max(size * (size - 1), 1)),
                        fit_s=float(sum(pool.fit_seconds[i] for i in subset) + seconds),
                        predict_s=float(sum(pool.predict_seconds[i] for i in subset)),
                    )
                )
        return rows, largest

    def _shift(
        self,
        pool: _Pool,
        reference: Any,
        student: Any,
        X_fit: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        X_test: np.ndarray,
        y_test: np.ndarray,
        classification: bool,
    ) -> pd.DataFrame:
        """Scores on corrupted test inputs, one row per corruption, severity (0: clean) and
        model: the mean member, the full pool fused by ``shift.combiner``, that ensemble
        calibrated (classification, with validation data) and the student."""
        settings = self.config.shift
        assert settings is not None
        combiner = study_combiners(self.config)[settings.combiner]
        everyone = list(range(len(pool.names)))
        calibrate = classification and len(X_val) > 0
        fitted, calibrator = self._fit_fusion(combiner, pool, everyone, X_val, y_val, calibrate)
        rows = []
        for kind, severity, X, y in self._shifted_sets(reference, X_fit, X_test, y_test):
            outputs = reference.member_predictions(X)
            fused = fitted.combine(outputs, X=X)
            models = {"ensemble": fused}
            if calibrator is not None:
                models["calibrated ensemble"] = calibrator.transform(fused)
            if student is not None:
                models["student"] = student.member_predictions(X)[0]
            members = pd.DataFrame([report.scores(y, output, classification) for output in outputs])
            base = {"corruption": kind, "severity": severity}
            rows.append(base | {"model": "mean member", **members.mean().to_dict()})
            for name, output in models.items():
                rows.append(base | {"model": name, **report.scores(y, output, classification)})
        return pd.DataFrame(rows)

    def _shifted_sets(
        self, reference: Any, X_fit: np.ndarray, X_test: np.ndarray, y_test: np.ndarray
    ) -> list[tuple[str, int, np.ndarray, np.ndarray]]:
        """``(corruption, severity, X, encoded y)`` for every corruption of ``shift`` and
        severity 0 (the clean test rows) to 5."""
        from experiments.shift import corrupt, mnist1d_shifted

        settings = self.config.shift
        assert settings is not None
        shape = tuple(settings.image_shape) if settings.image_shape else None
        sets = []
        for kind in settings.corruptions:
            for severity in [0, *settings.severities]:
                if severity == 0:
                    X, y = X_test, y_test
                elif kind == "mnist1d":
                    X, labels = mnist1d_shifted(severity, len(X_test), seed=self.config.seed)
                    keep = np.isin(labels, reference.classes_)  # not the held-out classes
                    X, y = X[keep], metrics.encode_labels(labels[keep], reference.classes_)
                else:
                    X = corrupt(
                        X_test,
                        kind,
                        severity,
                        reference=X_fit,
                        layout=settings.layout,
                        image_shape=shape,  # type: ignore[arg-type]
                        random_state=self.config.seed + severity,
                    )
                    y = y_test
                sets.append((kind, severity, X, y))
        return sets

    def _hold_out_classes(self, data: Dataset) -> tuple[Dataset, np.ndarray | None]:
        """``data`` without the rows of ``data.ood_classes``, and those classes' test rows (the
        out-of-distribution inputs of ``compare``); ``None`` when none are held out."""
        if self.config.compare is not None and data.task != "classification":
            raise ConfigError(
                "compare scores classifiers (accuracy, NLL, ECE, OOD AUROC); "
                f"{data.name} is a {data.task} data set"
            )
        held = self.config.data.ood_classes
        if held is None:
            return data, None
        if data.task != "classification":
            raise ConfigError("data.ood_classes needs a classification data set")
        missing = sorted(set(held) - set(np.unique(data.y_train).tolist()))
        if missing:
            raise ConfigError(f"data.ood_classes {missing} are not classes of {data.name}")
        inside_train = ~np.isin(data.y_train, held)
        inside_test = ~np.isin(data.y_test, held)
        kept = replace(
            data,
            X_train=data.X_train[inside_train],
            y_train=data.y_train[inside_train],
            X_test=data.X_test[inside_test],
            y_test=data.y_test[inside_test],
        )
        return kept, check_array(data.X_test[~inside_test], dtype=(np.float64, np.float32))

    def _compare(
        self,
        pool: _Pool,
        reference: Any,
        X_fit: np.ndarray,
        X_test: np.ndarray,
        y_test: np.ndarray,
        X_ood: np.ndarray | None,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The systems of ``compare``, run by run and summarised (:mod:`.compare`)."""
        settings = self.config.compare
        assert settings is not None
        groups = self._groups()
        shifted = []
        if self.config.shift is not None:
            shifted = [
                item for item in self._shifted_sets(reference, X_fit, X_test, y_test) if item[1] > 0
            ]
        runs = compare.system_runs(
            settings.systems,
            groups,
            pool.estimators,
            pool.fit_seconds,
            X_test,
            y_test,
            X_ood,
            shifted,
        )
        order = [system.name for system in settings.systems]
        return compare.summarise(runs, settings.baseline, order), runs

    def _groups(self) -> dict[str, list[int]]:
        """Each ``members`` entry's name and the indices of its members in the pool."""
        groups: dict[str, list[int]] = {}
        index = 0
        for entry in self.config.members:
            groups[entry.name] = list(range(index, index + len(entry.seeds)))
            index += len(entry.seeds)
        return groups

    def _soup(
        self,
        pool: _Pool,
        reference: Any,
        student: Any,
        rows: list[dict[str, Any]],
        X_fit: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        X_test: np.ndarray,
        y_test: np.ndarray,
    ) -> tuple[pd.DataFrame, pd.DataFrame | None, float]:
        """The ``soup`` step (:mod:`.soups`): its table, its interpolation curves and the
        pool's training seconds it is measured against."""
        settings = self.config.soup
        assert settings is not None
        groups = self._groups()
        chosen = [i for name in settings.members for i in groups[name]]
        parents = {
            entry.fine_tune
            for entry in self.config.members
            if entry.name in settings.members and entry.fine_tune
        }
        trained = set(chosen) | {i for name in parents for i in groups[name]}
        pool_seconds = float(sum(pool.fit_seconds[i] for i in trained))
        for i in [*chosen, *(groups[settings.independent] if settings.independent else [])]:
            if not np.array_equal(pool.estimators[i].classes_, reference.classes_):
                raise ConfigError(
                    f"soup: member {pool.names[i]!r} was trained on other classes than the pool"
                )
        shifted = []
        if self.config.shift is not None:
            shifted = [
                (X, y)
                for _, severity, X, y in self._shifted_sets(reference, X_fit, X_test, y_test)
                if severity > 0
            ]
        student_of = None
        if student is not None:
            student_of = (student, float(next(r for r in rows if r["kind"] == "student")["fit_s"]))
        table, curves = soups.soup_rows(
            [(pool.names[i], pool.estimators[i]) for i in chosen],
            (pool.validation[chosen], pool.test[chosen], [pool.predict_seconds[i] for i in chosen]),
            pool_seconds,
            [pool.estimators[i] for i in groups.get(settings.independent or "", [])],
            student_of,
            X_fit,
            X_val,
            y_val,
            X_test,
            y_test,
            shifted,
            settings.steps,
        )
        return table, curves, pool_seconds

    def _search(
        self, data: Dataset, X_test: np.ndarray, y_test: np.ndarray, classification: bool
    ) -> tuple[list[dict[str, Any]], dict[str, pd.DataFrame]]:
        """The searched ensemble and (``baseline``) the deep ensemble of the template at equal
        budget, each an ensemble search on the training data with ``validation_size`` held out.

        Both keep their study in ``output/search.log`` (an Optuna journal) and their members in
        ``output/cache``: a study run again continues or reuses them.
        """
        settings = self.config.search
        assert settings is not None
        template = (
            settings.estimator
            if settings.estimator is not None
            else clone(self.config.members[0].estimator)
        )
        kind = EnsembleSearchClassifier if classification else EnsembleSearchRegressor
        sides: dict[str, Any] = {"searched": settings.space}
        if settings.baseline:
            sides["deep"] = {}
        rows, trials = [], {}
        for side, space in sides.items():
            params = {
                "space": space,
                "n_trials": settings.n_trials,
                "ensemble_size": settings.ensemble_size,
                "extra_seeds": settings.extra_seeds,
                "cv": self.config.data.validation_size,
                "objectives": None if settings.objectives is None else tuple(settings.objectives),
            }
            # a changed search is a new Optuna study; an unchanged one continues or is reused
            key = joblib.hash((side, type(template).__qualname__, template.get_params(), params))
            search = kind(
                template,
                **params,
                storage=self.output / "search.log",
                study_name=f"{side}-{key[:12]}",
                checkpoint_dir=self.output / "cache",
                n_jobs=self.n_jobs,
                random_state=self.config.seed,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # failed trials are in trials_
                search.fit(data.X_train, data.y_train)
            # one pass of the members over the test rows, fused by the search's own weights
            start = time.perf_counter()
            members = search.member_predictions(X_test)
            output = search.ensemble_.combiner_.combine(members, X=X_test)
            seconds = time.perf_counter() - start
            pairwise = report.pairwise_disagreement(members, classification)
            size = len(members)
            trials[side] = search.trials_
            name = "searched" if side == "searched" else "deep ensemble"
            rows.append(
                report.row(
                    "search",
                    f"{name}[{size}]",
                    combiner="selection",
                    size=size,
                    members=" ".join(search.ensemble_.named_members_),
                    scores=report.scores(
                        y_test, np.reshape(output, (len(X_test), -1)), classification
                    ),
                    disagreement=float(pairwise.sum() / max(size * (size - 1), 1)),
                    fit_s=float(trials[side]["fit_seconds"].sum()),
                    predict_s=seconds,
                )
            )
        return rows, trials

    def _distill(
        self,
        pool: _Pool,
        X_fit: np.ndarray,
        y_fit: np.ndarray,
        X_comb: np.ndarray,
        y_comb: np.ndarray,
        X_test: np.ndarray,
        y_test: np.ndarray,
        classification: bool,
    ) -> tuple[dict[str, Any], Any]:
        """The pool (or the entries ``distill.members``), fused by the chosen combiner,
        distilled into the student (the student is cached on disk like the members): its row,
        and the student as a one-member ensemble whose outputs are laid out as the pool's."""
        settings = self.config.distill
        assert settings is not None
        combiner = study_combiners(self.config)[settings.combiner]
        options = settings.options()
        groups = self._groups()
        chosen = [i for name in settings.members or list(groups) for i in groups[name]]
        names = [pool.names[i] for i in chosen]
        estimators = [pool.estimators[i] for i in chosen]
        key = stable_hash(
            (
                [type(e).__qualname__ for e in estimators],
                [e.get_params() for e in estimators],
                settings.student.get_params(),
                combiner.get_params(),
                options,
                self.config.calibration,
                X_fit,
                y_fit,
            )
        )

        def train() -> Any:
            calibration = {"calibration": self.config.calibration} if classification else {}
            teacher = self._prefit(
                names, estimators, X_comb, y_comb, combiner=combiner, **calibration
            )
            return teacher.distill(
                X_fit, y_fit, student=settings.student, random_state=self.config.seed, **options
            )

        path = self.output / "cache" / f"student-{key[:16]}"
        trained = load_or_train(path, train, like=settings.student)
        # the student's outputs laid out as the pool's, on the same classes
        alone = self._prefit(["student"], [trained.estimator], X_comb, y_comb)
        [output], [predict_seconds] = alone.member_predictions(X_test, return_seconds=True)
        row = report.row(
            "student",
            f"student ({settings.combiner})",
            combiner=settings.combiner,
            members=type(settings.student).__name__,
            scores=report.scores(y_test, output, classification),
            disagreement=float("nan"),
            fit_s=trained.fit_seconds,
            predict_s=predict_seconds,
        )
        return row, alone
