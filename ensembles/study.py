"""Ensemble studies from one YAML file: ``ensembles-study CONFIG [--output DIR]``.

A study trains every member of a pool once (cached on disk), evaluates every combiner at every
ensemble size, optionally distills the full ensemble into one student, and writes
``results.csv`` / ``results.json`` (one row per member, ensemble and student), ``summary.md``
and plots. The config names the library's classes (or any importable class) with
``class_path`` / ``init_args``, as in LightningCLI, and is validated before anything trains::

    data: {source: mnist1d}
    members:
      - name: cnn1d
        estimator: {class_path: members.NeuralClassifier, init_args: {module: cnn1d}}
        seeds: [0, 1, 2]
    combiners:
      mean: combiners.MeanCombiner
      weighted: combiners.WeightedCombiner
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone, is_classifier, is_regressor
from sklearn.utils import check_random_state

from combiners import BaseCombiner, MeanCombiner, TemperatureScaling
from ensembles import metrics
from ensembles._base import PREFIT, fit_member, held_out_split, load_or_train
from ensembles.classifier import EnsembleClassifier, cross_fitted_fusion
from ensembles.datasets import Dataset, load_dataset
from ensembles.regressor import EnsembleRegressor

SUBSETS = ("random", "greedy")
CALIBRATIONS = (None, "temperature")


@dataclass
class DataConfig:
    """Where the data comes from and how it is split.

    ``source``: ``mnist1d``, a scikit-learn bundled set (``digits``, ``breast_cancer``,
    ``wine``, ``iris``, ``diabetes``) or a ``.npz`` / ``.csv`` file (``target`` names the
    column). ``validation_size`` of the training data is held out from the members to fit the
    combiners (and the temperature), so every combiner is compared on the same members.
    """

    source: str = "mnist1d"
    target: str | None = None
    task: str | None = None
    test_size: float = 0.2
    validation_size: float = 0.2
    seed: int = 0


@dataclass
class MemberConfig:
    """One entry of the pool: an estimator, trained once per seed (its ``random_state``)."""

    name: str
    estimator: BaseEstimator
    seeds: list[int] = field(default_factory=lambda: [0])


@dataclass
class DistillConfig:
    """Distill the full ensemble fused by ``combiner`` into ``student``."""

    student: BaseEstimator
    combiner: str = "mean"
    temperature: float = 2.0
    alpha: float = 0.9
    augment: str | None = None
    n_augment: int = 1


@dataclass
class StudyConfig:
    """One ensemble study: data, member pool, combiners, ensemble sizes, distillation."""

    members: list[MemberConfig]
    data: DataConfig = field(default_factory=DataConfig)
    combiners: dict[str, BaseCombiner] | None = None
    sizes: list[int] | None = None
    subsets: str = "random"
    draws: int = 3
    calibration: str | None = None
    distill: DistillConfig | None = None
    seed: int = 0
    output: str = "study"


class ConfigError(ValueError):
    """A config that cannot be run; the message names the key or value."""


def _parser() -> Any:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(prog="ensembles-study", exit_on_error=False)
    parser.add_class_arguments(StudyConfig)
    return parser


def read_config(path: str | Path) -> StudyConfig:
    """Parse and validate a study config; every problem is a :class:`ConfigError`."""
    from jsonargparse import ArgumentError

    if not Path(path).is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    parser = _parser()
    try:
        namespace = parser.parse_path(str(path))
        fields = parser.instantiate(namespace)
    except (ArgumentError, ValueError, TypeError, ImportError, AttributeError) as error:
        raise ConfigError(" ".join(str(error).split())) from None
    config = StudyConfig(**{name: fields[name] for name in StudyConfig.__dataclass_fields__})
    _check(config)
    return config


def _check(config: StudyConfig) -> None:
    """What the schema's types cannot say; checked before anything trains."""
    from members.registry import get_backbone

    if not config.members:
        raise ConfigError("members must list at least one estimator")
    names = [member.name for member in config.members]
    if len(set(names)) != len(names):
        raise ConfigError(f"members: names must be unique; got {names}")
    for member in config.members:
        if not member.seeds:
            raise ConfigError(f"members[{member.name}].seeds must hold at least one seed")
        module = member.estimator.get_params().get("module")
        if isinstance(module, str):
            try:
                get_backbone(module)
            except ValueError as error:
                raise ConfigError(f"members[{member.name}]: {error}") from None
    if config.subsets not in SUBSETS:
        raise ConfigError(f"subsets={config.subsets!r} is not one of {list(SUBSETS)}")
    if config.calibration not in CALIBRATIONS:
        raise ConfigError(f"calibration={config.calibration!r} is not one of {CALIBRATIONS}")
    if config.draws < 1:
        raise ConfigError(f"draws must be >= 1; got {config.draws}")
    if not 0.0 <= config.data.validation_size < 1.0:
        raise ConfigError(
            f"data.validation_size must be in [0, 1); got {config.data.validation_size}"
        )
    n_members = sum(len(member.seeds) for member in config.members)
    bad_sizes = [size for size in config.sizes or [] if not 1 <= size <= n_members]
    if bad_sizes:
        raise ConfigError(f"sizes {bad_sizes} are outside 1..{n_members} (the pool's size)")
    combiners = _combiners(config)
    learns = any(combiner.learns for combiner in combiners.values()) or config.calibration
    if learns and config.data.validation_size == 0:
        raise ConfigError(
            "data.validation_size must be > 0: a combiner that learns (or calibration) is "
            "fitted on data the members did not train on"
        )
    if config.distill is not None and config.distill.combiner not in combiners:
        raise ConfigError(
            f"distill.combiner={config.distill.combiner!r} is not one of the combiners "
            f"{sorted(combiners)}"
        )


def _combiners(config: StudyConfig) -> dict[str, BaseCombiner]:
    """The study's combiners by name; the plain mean when the config names none."""
    return config.combiners or {"mean": MeanCombiner()}


def _timed_output(reference: Any, member: Any, X: np.ndarray) -> tuple[np.ndarray, float]:
    """``member``'s outputs on validated ``X`` as ``reference`` lays them out, and their time."""
    start = time.perf_counter()
    output = reference._member_output(member, X)
    return output, time.perf_counter() - start


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
    """

    def __init__(
        self,
        config: StudyConfig,
        output: str | Path | None = None,
        *,
        quiet: bool = False,
        verbose: bool = False,
    ) -> None:
        self.config = config
        self.output = Path(config.output if output is None else output)
        self.quiet = quiet
        self.verbose = verbose

    def run(self) -> pd.DataFrame:
        """Train (or reuse) the pool, evaluate every combiner and size, write the report."""
        from ensembles import plots

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
        self._check_task(data.task)
        classification = data.task == "classification"
        X_fit, y_fit, X_val, y_val = self._validation_split(data, classification)
        pool = self._train_pool(X_fit, y_fit)
        # the combiners' data; without validation data (fixed rules only) the training data
        # just tells the reference ensemble the classes
        X_comb, y_comb = (X_val, y_val) if len(X_val) else (X_fit, y_fit)
        reference = self._prefit(pool, X_comb, y_comb)
        pool.validation = reference.member_predictions(X_val) if len(X_val) else pool.validation
        X_test = reference._validate_X(data.X_test)
        timed = [_timed_output(reference, member, X_test) for member in pool.estimators]
        pool.test = np.stack([output for output, _ in timed])
        pool.predict_seconds = [seconds for _, seconds in timed]
        encode = reference._encode_labels if classification else np.asarray
        y_val_t, y_test_t = encode(y_val), encode(data.y_test)
        pairwise = self._pairwise(pool.test, classification)

        rows = self._member_rows(pool, pairwise, y_test_t, classification)
        fused: dict[str, np.ndarray] = {}
        for name, combiner in _combiners(self.config).items():
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
        if self.config.distill is not None:
            rows.append(
                self._distill(
                    pool, reference, X_fit, y_fit, X_comb, y_comb, X_test, y_test_t, classification
                )
            )
        table = pd.DataFrame(rows)

        self.output.mkdir(parents=True, exist_ok=True)
        table.to_csv(self.output / "results.csv", index=False)
        (self.output / "results.json").write_text(
            json.dumps(table.to_dict(orient="records"), indent=1) + "\n"
        )
        figures = plots.study_plots(
            table,
            pool.names,
            pool.test,
            pairwise,
            fused,
            y_test_t,
            self.output / "plots",
            classification,
        )
        (self.output / "summary.md").write_text(self._summary(table, data, figures))
        return table

    # -- steps -------------------------------------------------------------------------------
    def _check_task(self, task: str) -> None:
        check = is_classifier if task == "classification" else is_regressor
        for member in self.config.members:
            if not check(member.estimator):
                raise ConfigError(
                    f"members[{member.name}]: the data is a {task} task but "
                    f"{type(member.estimator).__name__} is not a "
                    f"{'classifier' if task == 'classification' else 'regressor'}"
                )
        if self.config.distill is not None and not check(self.config.distill.student):
            raise ConfigError(f"distill.student must be a {task} estimator")

    def _validation_split(
        self, data: Dataset, classification: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        fraction = self.config.data.validation_size
        if fraction == 0:
            return data.X_train, data.y_train, data.X_train[:0], data.y_train[:0]
        train, held = held_out_split(data.y_train, fraction, classification, self.config.seed)
        return data.X_train[train], data.y_train[train], data.X_train[held], data.y_train[held]

    def _train_pool(self, X_fit: np.ndarray, y_fit: np.ndarray) -> _Pool:
        from tqdm.auto import tqdm

        todo = [
            (f"{m.name}_s{seed}" if len(m.seeds) > 1 else m.name, m.estimator, seed)
            for m in self.config.members
            for seed in m.seeds
        ]
        pool = _Pool([], [], [], [], np.empty((len(todo), 0, 0)), np.empty(0))  # outputs later
        cache = self.output / "cache"
        with tqdm(total=len(todo), desc="members", unit="member", disable=self.quiet) as bar:
            for name, template, seed in todo:
                bar.set_postfix_str(name)
                member = clone(template)
                params = member.get_params()
                if "random_state" in params:
                    member.set_params(random_state=seed)
                if "log_dir" in params:
                    member.set_params(log_dir=str(self.output / "logs" / name))
                if "verbose" in params:
                    member.set_params(verbose=self.verbose)
                fitted, seconds = fit_member(
                    member,
                    X_fit,
                    y_fit,
                    where=f"member {name!r}",
                    checkpoint_dir=cache,
                    file_stem=name,
                )
                pool.names.append(name)
                pool.estimators.append(fitted)
                pool.fit_seconds.append(seconds)
                bar.update()
        return pool

    def _prefit(self, pool: _Pool, X: np.ndarray, y: np.ndarray) -> Any:
        """A prefit ensemble of the pool: it lays member outputs out on common classes."""
        kind = EnsembleClassifier if is_classifier(pool.estimators[0]) else EnsembleRegressor
        members = list(zip(pool.names, pool.estimators, strict=True))
        return kind(members, cv=PREFIT).fit(X, y)

    def _report(self, y: np.ndarray, output: np.ndarray, classification: bool) -> dict[str, float]:
        if classification:
            return metrics.classification_report(y, output)
        return metrics.regression_report(np.reshape(y, (len(y), -1)), output)

    def _pairwise(self, predictions: np.ndarray, classification: bool) -> np.ndarray:
        """Member disagreement: differing top classes, or RMS difference of predictions."""
        if classification:
            return metrics.disagreement(predictions)
        diff = predictions[:, None] - predictions[None, :]
        return np.sqrt((diff**2).mean(axis=(2, 3)))  # type: ignore[no-any-return]

    def _member_rows(
        self, pool: _Pool, pairwise: np.ndarray, y_test: np.ndarray, classification: bool
    ) -> list[dict[str, Any]]:
        others = max(len(pool.names) - 1, 1)
        rows = []
        for index, name in enumerate(pool.names):
            rows.append(
                {
                    "kind": "member",
                    "name": name,
                    "combiner": "",
                    "size": 1,
                    "draw": 0,
                    "members": name,
                    **self._report(y_test, pool.test[index], classification),
                    "disagreement": float(pairwise[index].sum() / others),
                    "fit_s": pool.fit_seconds[index],
                    "predict_s": pool.predict_seconds[index],
                }
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
            scores = [
                self._report(y_val, pool.validation[chosen + [i]].mean(axis=0), classification)[key]
                for i in remaining
            ]
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
    ) -> tuple[np.ndarray, float]:
        """Fit ``combiner`` on the subset's validation outputs; fused test outputs and time."""
        subset = list(subset)
        start = time.perf_counter()
        validation = pool.validation[subset]
        if len(X_val):
            fitted = clone(combiner).fit(validation, y_val, X=X_val)
        else:
            fitted = clone(combiner).fit(np.zeros((len(subset), 0, pool.test.shape[2])))
        fused = fitted.combine(pool.test[subset], X=X_test)
        if classification and self.config.calibration == "temperature":
            held_out = cross_fitted_fusion(fitted, validation, y_val, X_val)
            fused = TemperatureScaling().fit(held_out, y_val).transform(fused)
        return fused, time.perf_counter() - start

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
                fused, seconds = self._fuse(
                    combiner, pool, subset, X_val, y_val, X_test, classification
                )
                if draw == 0:
                    largest = fused
                pairs = pairwise[np.ix_(subset, subset)]
                rows.append(
                    {
                        "kind": "ensemble",
                        "name": f"{name}[{size}]",
                        "combiner": name,
                        "size": size,
                        "draw": draw,
                        "members": " ".join(pool.names[i] for i in subset),
                        **self._report(y_test, fused, classification),
                        "disagreement": float(pairs.sum() / max(size * (size - 1), 1)),
                        "fit_s": float(sum(pool.fit_seconds[i] for i in subset) + seconds),
                        "predict_s": float(sum(pool.predict_seconds[i] for i in subset)),
                    }
                )
        return rows, largest

    def _distill(
        self,
        pool: _Pool,
        reference: Any,
        X_fit: np.ndarray,
        y_fit: np.ndarray,
        X_comb: np.ndarray,
        y_comb: np.ndarray,
        X_test: np.ndarray,
        y_test: np.ndarray,
        classification: bool,
    ) -> dict[str, Any]:
        import joblib

        settings = self.config.distill
        assert settings is not None
        combiner = _combiners(self.config)[settings.combiner]
        options = {k: v for k, v in asdict(settings).items() if k not in ("student", "combiner")}
        key = joblib.hash(
            (
                [type(e).__qualname__ for e in pool.estimators],
                [e.get_params() for e in pool.estimators],
                settings.student.get_params(),
                combiner.get_params(),
                options,
                self.config.calibration,
                X_fit,
                y_fit,
            )
        )

        def train() -> Any:
            members = list(zip(pool.names, pool.estimators, strict=True))
            teacher = clone(reference).set_params(members=members, combiner=combiner)
            if classification:
                teacher.set_params(calibration=self.config.calibration)
            teacher.fit(X_comb, y_comb)
            return teacher.distill(
                X_fit, y_fit, student=settings.student, random_state=self.config.seed, **options
            )

        path = self.output / "cache" / f"student-{key[:16]}.joblib"
        student, seconds = load_or_train(path, train)
        output, predict_seconds = _timed_output(reference, student, X_test)
        row = {
            "kind": "student",
            "name": f"student ({settings.combiner})",
            "combiner": settings.combiner,
            "size": 1,
            "draw": 0,
            "members": type(settings.student).__name__,
            **self._report(y_test, output, classification),
            "disagreement": float("nan"),
            "fit_s": seconds,
            "predict_s": predict_seconds,
        }
        return row

    def _summary(self, table: pd.DataFrame, data: Dataset, figures: list[Path]) -> str:
        classification = data.task == "classification"
        metric_names = (
            ["accuracy", "nll", "brier", "ece"] if classification else ["rmse", "mae", "r2"]
        )
        key = "nll" if classification else "rmse"  # lower is better for both
        members = table[table.kind == "member"]
        best = members.sort_values(key).iloc[0]
        n_members = len(members)
        full = table[(table.kind == "ensemble") & (table["size"] == n_members)]
        headline = [best.to_dict() | {"name": f"best member ({best['name']})"}]
        headline += full.to_dict(orient="records")
        headline += table[table.kind == "student"].to_dict(orient="records")
        columns = ["name", *metric_names, "disagreement", "fit_s", "predict_s"]
        head = pd.DataFrame(headline)[columns]
        curve = (
            table[table.kind == "ensemble"]
            .groupby(["combiner", "size"])[key]
            .agg(["mean", "std"])
            .reset_index()
            .pivot(index="size", columns="combiner", values="mean")
        )
        lines = [
            f"# Ensemble study: {data.name}",
            "",
            f"{data.task}; {len(data.y_train)} training samples "
            f"({self.config.data.validation_size:g} held out for the combiners), "
            f"{len(data.y_test)} test samples; "
            f"{n_members} members. Metrics on the test set.",
            "",
            "## Headline",
            "",
            head.to_markdown(index=False, floatfmt=".4f"),
            "",
            f"## Test {key} by ensemble size (mean over {self.config.draws} "
            f"{self.config.subsets} draws)",
            "",
            curve.to_markdown(floatfmt=".4f"),
            "",
            "## Plots",
            "",
            *[f"![{figure.stem}](plots/{figure.name})" for figure in figures],
            "",
            "All rows (every member, ensemble draw and student): `results.csv`, `results.json`.",
            "",
        ]
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """The ``ensembles-study`` console script."""
    parser = argparse.ArgumentParser(
        prog="ensembles-study", description="Run an ensemble study described by a YAML config."
    )
    parser.add_argument("config", help="the study's YAML file")
    parser.add_argument("--output", help="output folder (default: the config's output key)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--verbose", action="store_true", help="also Lightning's per-member progress bars"
    )
    args = parser.parse_args(argv)
    try:
        config = read_config(args.config)
        study = Study(config, args.output, quiet=args.quiet, verbose=args.verbose)
        start = time.perf_counter()
        study.run()
    except (ConfigError, FileNotFoundError, ImportError) as error:
        print(f"ensembles-study: error: {args.config}: {error}", file=sys.stderr)
        return 2
    print(
        f"study finished in {time.perf_counter() - start:.0f} s; wrote {study.output}/summary.md, "
        "results.csv, results.json and plots/",
        file=sys.stderr,
    )
    print((study.output / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
