"""The loop of one pool search: ask Optuna for a trial, train it, judge it, tell Optuna.

:class:`SearchLoop` runs the trials of :class:`~ensembles.EnsembleSearchClassifier` /
``Regressor``'s fit. It does not know the estimator that owns it: it receives the search's
settings (:class:`SearchSettings`, a value) and a judge (:class:`TrialJudge`: how a trained
member's held-out outputs are read and scored, from the task of :mod:`members.tasks`).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import clone

from combiners import BaseCombiner
from combiners.metrics import CLASSIFICATION_LOSSES, REGRESSION_LOSSES
from ensembles.member_cache import FittedMember
from ensembles.search_space import SubSpace, estimator_params
from ensembles.training import MemberTask, load_fitted, plan_tasks, run_tasks
from members.tasks import Task

# Optuna's attributes of a trial: where it runs, its seed, why it failed
# (a failed trial without an error was interrupted: Ctrl-C, or its process was killed)
TRIAL_OWNER, TRIAL_SEED, TRIAL_ERROR = "owner", "seed", "error"


@dataclass(frozen=True)
class SearchSettings:
    """What the loop needs of the search's parameters, resolved once per fit."""

    name: str  # the estimator's class name, for log lines
    n_trials: int
    n_jobs: int | None
    verbose: bool
    space: Any  # as the user gave it, for messages
    study_name: str
    checkpoint_dir: str | os.PathLike[str] | None
    refits: bool  # folds: the chosen configurations are trained again on all the data


@dataclass(frozen=True)
class TrialJudge:
    """How a trial's member is read and scored on the held-out rows.

    Parameters
    ----------
    task : Task
        The search's task (:mod:`members.tasks`).
    fitted : object
        The target attributes the task reads a member's output with (``classes_``;
        ``n_outputs_``).
    """

    task: Task
    fitted: Any

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The held-out losses every trial reports (columns of ``trials_``)."""
        return self.task.metric_names

    def output(self, member: Any, X: np.ndarray, name: str) -> np.ndarray:
        """Member ``name``'s checked output on ``X``, ``(n_samples, n_outputs)``."""
        return self.task.member_output(member, X, self.fitted, name)

    def losses(
        self, outputs: np.ndarray, targets: np.ndarray, sample_weight: np.ndarray | None
    ) -> dict[str, float]:
        """The held-out losses of one trial's outputs (the very ones the selection
        minimises), weighted by ``sample_weight``."""
        table = {**CLASSIFICATION_LOSSES, **REGRESSION_LOSSES}
        return {
            name: float(table[name](targets, outputs, sample_weight)) for name in self.metric_names
        }


@dataclass
class Trial:
    """One trial's configuration, and what came of it."""

    number: int
    values: dict[str, Any]  # the space's values (module_kwargs__* keys)
    params: dict[str, Any]  # set_params arguments for the template
    seed: int | None
    label: str
    state: str = "RUNNING"
    held_out: np.ndarray | None = None  # outputs on the held-out rows
    members: list[Any] = field(default_factory=list)  # one per split
    fit_seconds: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    seed_of: int | None = None  # the hyper-deep step: the trial whose configuration this reruns
    repeat: int = 0  # and which of its extra seeds this is


class SearchLoop:
    """The ask-train-tell loop of one fit, and the trials it ran or found in storage."""

    def __init__(
        self,
        settings: SearchSettings,
        judge: TrialJudge,
        template: Any,
        space: list[SubSpace],
        objectives: tuple[str, ...],
        splits: list[tuple[Any, Any]],
        order: np.ndarray,
        X: np.ndarray,
        y: np.ndarray,
        seed: int,
        sampler_seed: int,
        weights: np.ndarray | None,
        held_weights: np.ndarray | None,
    ) -> None:
        self.settings, self.judge = settings, judge
        self.template, self.space = template, space
        self.objectives, self.splits, self.order = objectives, splits, order
        self.X, self.y, self.seed, self.sampler_seed = X, y, seed, sampler_seed
        self.checkpoint_dir = settings.checkpoint_dir
        self.trials: list[Trial] = []
        # the rows' weights (None: equal), and those of the held-out rows in held-out order
        self.weights, self.held_weights = weights, held_weights
        self.me = f"{socket.gethostname()}:{os.getpid()}"
        self.seeded = template.get_params().get("random_state", 0) is None

    # -- configurations ----------------------------------------------------------------------
    def _seed_of(self, number: int, repeat: int = 0) -> int | None:
        if not self.seeded:
            return None  # the template's own random_state holds
        seeds = np.random.SeedSequence([self.seed, number, repeat]).generate_state(1)
        return int(seeds[0] % np.iinfo(np.int32).max)

    def _sample(self, trial: Any) -> tuple[str, dict[str, Any]]:
        if len(self.space) == 1:
            alternative = self.space[0]
        else:
            label = trial.suggest_categorical("space", [a.label for a in self.space])
            alternative = next(a for a in self.space if a.label == label)
        prefix = f"{alternative.label}:" if len(self.space) > 1 else ""
        return alternative.label, {p.name: p.sample(trial, prefix) for p in alternative.params}

    def _decode(self, stored: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        alternative = (
            self.space[0]
            if len(self.space) == 1
            else next(a for a in self.space if a.label == stored["space"])
        )
        prefix = f"{alternative.label}:" if len(self.space) > 1 else ""
        return alternative.label, {p.name: p.decode(stored, prefix) for p in alternative.params}

    def _make(self, number: int, label: str, values: dict[str, Any], seed: int | None) -> Trial:
        return Trial(number, values, estimator_params(self.template, values), seed, label)

    def _estimator(self, trial: Trial) -> Any:
        estimator = clone(self.template)
        try:
            estimator.set_params(**trial.params)
            if trial.seed is not None:
                estimator.set_params(random_state=trial.seed)
        except ValueError as error:
            raise ValueError(
                f"space does not fit estimator {type(self.template).__name__}: {error}"
            ) from None
        return estimator

    def _tasks(self, trial: Trial) -> list[MemberTask]:
        name = member_name(trial)
        return [
            MemberTask(
                [self._estimator(trial)],
                [f"trial {name}" + (f" on fold {fold}" if len(self.splits) > 1 else "")],
                [name if len(self.splits) == 1 else f"{name}-fold{fold}"],
                np.asarray(train),
                [(trial.number, fold)],
                self._fit_params(),
            )
            for fold, (train, _) in enumerate(self.splits)
        ]

    def _fit_params(self) -> dict[str, Any] | None:
        return None if self.weights is None else {"sample_weight": self.weights}

    # -- the loop ----------------------------------------------------------------------------
    def run(self, study: Any, targets: np.ndarray) -> None:
        """Ask, train and tell until the study holds ``n_trials`` finished trials."""
        from optuna.trial import TrialState

        self.targets = targets
        self._fail_stale(study, TrialState)
        self._reload(study, targets, TrialState)
        n_trials = self.settings.n_trials
        lock = threading.Lock()  # joblib may draw the next task from another thread
        # trials asked and not yet told: number -> (Optuna's trial, ours, fitted by fold)
        pending: dict[int, tuple[Any, Trial, dict[int, FittedMember]]] = {}

        def tasks() -> Iterator[MemberTask]:
            """The next trial's tasks, asked of Optuna when a worker comes free."""
            while True:
                with lock:
                    if self._counted(study, TrialState) >= n_trials:
                        return
                    optuna_trial = study.ask()
                    # TPE draws when the trial suggests (lazily), so its seed can be the
                    # trial's number: unique even among processes sharing the storage
                    study.sampler = self._sampler(optuna_trial.number)
                    label, values = self._sample(optuna_trial)
                    trial = self._make(optuna_trial.number, label, values, None)
                    trial.seed = self._seed_of(trial.number)
                    optuna_trial.set_user_attr(TRIAL_SEED, trial.seed)
                    optuna_trial.set_user_attr(TRIAL_OWNER, self.me)
                    pending[trial.number] = (optuna_trial, trial, {})
                yield from self._tasks(trial)

        def done(task: MemberTask, fitted: list[FittedMember]) -> None:
            """A training finished: once all of a trial's have, judge it and tell Optuna."""
            number, fold = task.keys[0]  # type: ignore[index]
            with lock:
                optuna_trial, trial, by_fold = pending[number]
                by_fold[fold] = fitted[0]
                if len(by_fold) < len(self.splits):
                    return
                del pending[number]
                self._finish(trial, [by_fold[f] for f in range(len(self.splits))], targets)
                self._tell(study, optuna_trial, trial, TrialState)

        try:
            run_tasks(
                tasks(),
                self.X,
                self.y,
                checkpoint_dir=self.checkpoint_dir,
                log=self._log(),
                on_done=done,
                n_jobs=self.settings.n_jobs,
                failures="record",
            )
        except KeyboardInterrupt:
            # told failed without an error: interrupted, neither counted nor reloaded
            for optuna_trial, _, _ in pending.values():
                study.tell(optuna_trial, state=TrialState.FAIL)
            raise
        # what other processes sharing the storage finished meanwhile joins the selection
        self._reload(study, targets, TrialState)

    def _sampler(self, number: int) -> Any:
        """TPE seeded by ``random_state`` and the trial's number: a search resumed, or a second
        process on a shared storage, draws anew instead of repeating the first proposals.
        ``constant_liar``: trials running elsewhere count as bad, so that trials asked while
        others train differ from them (TPE keeps no state between asks that matters: every
        history is in the storage)."""
        from optuna.samplers import TPESampler

        seed = np.random.SeedSequence([self.sampler_seed, number]).generate_state(1)[0]
        return TPESampler(seed=int(seed), constant_liar=True)

    def _tell(self, study: Any, optuna_trial: Any, trial: Trial, TrialState: Any) -> None:
        if trial.state == "COMPLETE":
            study.tell(optuna_trial, [trial.metrics[name] for name in self.objectives])
        else:
            optuna_trial.set_user_attr(TRIAL_ERROR, trial.error)
            study.tell(optuna_trial, state=TrialState.FAIL)
            warnings.warn(
                f"trial {trial.number} failed and is left out: {trial.error}", stacklevel=2
            )
        self.trials.append(trial)

    def _log(self) -> Callable[[str], None] | None:
        prefix = f"[{self.settings.name}] "
        return (lambda line: print(prefix + line, flush=True)) if self.settings.verbose else None

    def _counted(self, study: Any, TrialState: Any) -> int:
        """Trials that count towards ``n_trials``: finished (complete or failed, not
        interrupted) or running elsewhere."""
        return sum(
            1
            for t in study.get_trials(deepcopy=False)
            if t.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
            or (t.state == TrialState.FAIL and TRIAL_ERROR in t.user_attrs)
        )

    def _fail_stale(self, study: Any, TrialState: Any) -> None:
        """Trials left running by a process of this machine that no longer exists (killed):
        failed without an error, i.e. interrupted, so that they do not count."""
        host = socket.gethostname()
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            owner = str(trial.user_attrs.get(TRIAL_OWNER, ""))
            name, _, pid = owner.rpartition(":")
            if name == host and pid.isdigit() and not process_alive(int(pid)):
                study.tell(trial.number, state=TrialState.FAIL)

    def _reload(self, study: Any, targets: np.ndarray, TrialState: Any) -> None:
        """The trials an earlier run (or another process) finished and this one does not hold
        yet: completed ones loaded from ``checkpoint_dir`` (never trained again), failed ones
        listed."""
        found = []
        known = {trial.number for trial in self.trials}
        for stored in study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)
        ):
            if stored.number in known:
                continue
            if stored.state == TrialState.FAIL and TRIAL_ERROR not in stored.user_attrs:
                continue  # interrupted
            try:
                label, values = self._decode(stored.params)
            except (KeyError, IndexError, StopIteration):
                raise ValueError(
                    f"trial {stored.number} in storage does not fit space={self.settings.space!r}: "
                    "continue a search with the space it was started with"
                ) from None
            trial = self._make(stored.number, label, values, stored.user_attrs.get(TRIAL_SEED))
            if stored.state == TrialState.FAIL:
                trial.state, trial.error = "FAIL", stored.user_attrs.get(TRIAL_ERROR)
                self.trials.append(trial)
                continue
            found.append(trial)
        missing = []
        for trial in found:
            loaded = [
                load_fitted(task, self.X, self.y, self.checkpoint_dir)[0]
                for task in self._tasks(trial)
            ]
            if any(member is None for member in loaded):
                missing.append(trial.number)
                continue
            self._finish(trial, [m for m in loaded if m is not None], targets)
            self.trials.append(trial)
        if missing:
            warnings.warn(
                f"trials {missing} of study {self.settings.study_name!r} finished in another run "
                "whose members are not in checkpoint_dir; they are left out of the selection",
                stacklevel=4,
            )

    def _train(self, trials: list[Trial], targets: np.ndarray) -> None:
        tasks = [task for trial in trials for task in self._tasks(trial)]
        results = run_tasks(
            tasks,
            self.X,
            self.y,
            checkpoint_dir=self.checkpoint_dir,
            log=self._log(),
            n_jobs=self.settings.n_jobs,
            failures="record",
        )
        by_number: dict[int, list[FittedMember]] = {}
        for task, fitted in zip(tasks, results, strict=True):
            by_number.setdefault(task.keys[0][0], []).extend(fitted)  # type: ignore[index]
        for trial in trials:
            self._finish(trial, by_number[trial.number], targets)

    def _finish(self, trial: Trial, fitted: list[FittedMember], targets: np.ndarray) -> None:
        """The trial's held-out outputs and objectives, or its failure."""
        failed = next((member.error for member in fitted if member.error), None)
        if failed is None:
            try:
                trial.members = [member.estimator for member in fitted]
                trial.fit_seconds = sum(member.fit_seconds for member in fitted)
                outputs, latency = [], []
                for member, (_, test) in zip(trial.members, self.splits, strict=True):
                    start = time.perf_counter()
                    outputs.append(self.judge.output(member, self.X[test], member_name(trial)))
                    latency.append((time.perf_counter() - start) / max(len(test), 1))
                trial.held_out = np.concatenate(outputs)[self.order]
                trial.metrics = self.judge.losses(trial.held_out, targets, self.held_weights)
                # milliseconds for 1000 rows
                trial.metrics["latency"] = 1e6 * latency_per_row(
                    trial.members[0], self.X[self.splits[0][1]], min(latency)
                )
                count = count_parameters(trial.members[0], "parameters" in self.objectives)
                trial.metrics["parameters"] = np.nan if count is None else float(count)
            except Exception as error:  # a member that predicts NaN, say
                failed = f"{type(error).__name__}: {error}"
        if failed is not None:
            trial.state, trial.error, trial.members, trial.held_out = "FAIL", failed, [], None
        else:
            trial.state = "COMPLETE"

    # -- after the search --------------------------------------------------------------------
    def reseed(self, chosen: list[Trial], extra: int) -> list[Trial]:
        """The hyper-deep step: each chosen configuration trained ``extra`` more times, each
        with a new seed, each training its own task (in parallel with ``n_jobs``)."""
        if not self.seeded:
            warnings.warn(
                "extra_seeds needs a template whose random_state is None (the search seeds "
                "each training); the template fixes it, so no extra seeds are trained",
                stacklevel=3,
            )
            return []
        seeds: list[Trial] = []
        for trial in chosen:
            for repeat in range(1, extra + 1):
                copy = self._make(trial.number, trial.label, trial.values, None)
                copy.seed, copy.seed_of = self._seed_of(trial.number, repeat), trial.number
                copy.repeat = repeat
                copy.number = -(len(seeds) + 1)  # not an Optuna trial
                seeds.append(copy)
        if not seeds:
            return []
        self._train(seeds, self.targets)
        return seeds

    def final_members(self, trials: list[Trial], weights: np.ndarray) -> list[Any]:
        """The chosen trials' members: as trained (held-out fraction) or refit on all rows."""
        if not self.settings.refits:
            return [trial.members[0] if w > 0 else None for trial, w in zip(trials, weights)]
        chosen = [trial for trial, w in zip(trials, weights, strict=True) if w > 0]
        estimators = [self._estimator(trial) for trial in chosen]
        tasks = plan_tasks(
            estimators,
            names=[f"trial {member_name(trial)} on all the data" for trial in chosen],
            stems=[f"{member_name(trial)}-all" for trial in chosen],
            batched=False,
            n_features=self.X.shape[1],
            n_outputs=1,
            fit_params=[self._fit_params()] * len(estimators),
        )
        results = run_tasks(
            tasks, self.X, self.y, checkpoint_dir=self.checkpoint_dir, n_jobs=self.settings.n_jobs
        )
        refit = iter([member.estimator for fitted in results for member in fitted])
        return [next(refit) if w > 0 else None for w in weights]

    def table(self, weights: np.ndarray, selected: list[Trial]) -> list[dict[str, Any]]:
        weight_of = {id(trial): w for trial, w in zip(selected, weights, strict=True)}
        rows = []
        for trial in sorted(
            {id(t): t for t in [*self.trials, *selected]}.values(),
            key=lambda t: (t.number if t.seed_of is None else t.seed_of, t.repeat),
        ):
            row: dict[str, Any] = {
                "number": trial.number if trial.seed_of is None else None,
                "seed_of": trial.seed_of,
                "state": trial.state,
                "space": trial.label,
                **trial.values,
                **{name: trial.metrics.get(name, np.nan) for name in self.judge.metric_names},
                "latency_ms": trial.metrics.get("latency", np.nan),
                "parameters": trial.metrics.get("parameters", np.nan),
                "fit_seconds": trial.fit_seconds,
                "weight": float(weight_of.get(id(trial), 0.0)),
                "seed": trial.seed,
                "failure": trial.error,
            }
            rows.append(row)
        return rows


def select_weights(
    selection: BaseCombiner,
    trials: list[Trial],
    targets: np.ndarray,
    X: np.ndarray,
    sample_weight: np.ndarray | None,
) -> np.ndarray:
    outputs = np.stack([trial.held_out for trial in trials])  # type: ignore[misc]
    fitted = clone(selection).fit(outputs, targets, X=X, sample_weight=sample_weight)
    weights = getattr(fitted, "weights_", None)
    if weights is None:
        raise ValueError(
            f"selection {type(selection).__name__} has no weights_ after fitting; the search "
            "needs a combiner that weighs its members (EnsembleSelection, WeightedCombiner)"
        )
    return np.asarray(weights, dtype=float)


def member_name(trial: Trial) -> str:
    if trial.seed_of is None:
        return f"trial{trial.number}"
    return f"trial{trial.seed_of}_seed{trial.repeat}"


def latency_per_row(member: Any, X: np.ndarray, first: float) -> float:
    """Seconds per row to predict ``X``: the best of the first pass and two more."""
    times = [first]
    predict = getattr(member, "predict_proba", None) or member.predict
    for _ in range(2):
        start = time.perf_counter()
        predict(X)
        times.append((time.perf_counter() - start) / max(len(X), 1))
    return min(times)


def count_parameters(member: Any, required: bool) -> int | None:
    """The weights of ``member``'s fitted network; ``None`` (or, when ``required``, an error)
    for a member without one."""
    network = getattr(member, "model_", None)
    if network is None or not hasattr(network, "parameters"):
        if not required:
            return None
        raise TypeError(
            f"objective 'parameters' counts a network's weights; {type(member).__name__} has "
            "no fitted torch network (model_)"
        )
    return int(sum(p.numel() for p in network.parameters()))


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
