"""The member-training service: the one way the ensembles and the study train their members.

A unit of work is a :class:`MemberTask`: one member, or one group of members that the batched
engine trains together (:func:`members.fit_batched`), fitted on given rows of the training
data. :func:`plan_tasks` cuts a list of members into tasks (the grouping policy is
:func:`members.batched.plan_groups`); :func:`run_tasks` runs them and, for each task, returns
its :class:`~ensembles.member_cache.FittedMember`\\ s. Running a task times it, names the
member(s) in any error, and with a ``checkpoint_dir`` stores every member as soon as it is
trained and loads, instead of training again, a member whose class, parameters and training
rows are unchanged (:mod:`ensembles.member_cache`).

Tasks are independent of each other (each member keeps its own seed), so the order in which
they run does not change any result; :func:`run_tasks` is where a parallel executor plugs in.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
from sklearn.utils.validation import _check_method_params

from ensembles.member_cache import FittedMember, checkpoint_path, load_cached, store_cached
from ensembles.parallel import (
    DeviceLease,
    WorkerTorch,
    active_backend,
    device_lease,
    fetch_arrays,
    share_arrays,
    worker_count,
)
from members import fit_batched
from members.batched import plan_groups
from members.trainer import on_cuda_device

logger = logging.getLogger(__name__)


@dataclass
class MemberTask:
    """One member, or one group trained together by the batched engine, on given rows.

    Parameters
    ----------
    estimators : list of estimators
        Unfitted; fitted in place. Two or more must differ only in ``random_state``.
    names : list of str
        How messages name each estimator, e.g. ``"member 'mlp' on fold 2"``.
    stems : list of str
        Each estimator's checkpoint file name stem.
    rows : ndarray, optional
        The rows of the training data to fit on; ``None``: all of them.
    keys : list, optional
        Whatever the caller needs to file each result (e.g. ``(fold, member index)``).
    fit_params : dict, optional
        What ``fit`` gets besides ``X`` and ``y`` (``sample_weight``, metadata routed to these
        members), the same for every estimator of the task; arrays with one entry per row of
        the training data are cut to ``rows`` with it.
    """

    estimators: list[Any]
    names: list[str]
    stems: list[str]
    rows: np.ndarray | None = None
    keys: list[Any] | None = None
    fit_params: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        n = len(self.estimators)
        if n == 0 or len(self.names) != n or len(self.stems) != n:
            raise ValueError(
                "a MemberTask needs one name and one stem per estimator; got "
                f"{n} estimators, {len(self.names)} names, {len(self.stems)} stems"
            )


def plan_tasks(
    estimators: Sequence[Any],
    *,
    names: Sequence[str],
    stems: Sequence[str],
    batched: bool | str,
    n_features: int,
    n_outputs: int,
    rows: np.ndarray | None = None,
    keys: Sequence[Any] | None = None,
    fit_params: Sequence[dict[str, Any] | None] | None = None,
) -> list[MemberTask]:
    """Cut ``estimators`` into tasks on ``rows``: the groups :func:`plan_groups` forms train
    together (those of them whose ``fit_params``, one dict per estimator, are equal), every
    other estimator alone. ``keys`` (default: the indices) travel with them."""
    keys = list(range(len(estimators))) if keys is None else list(keys)
    params = [None] * len(estimators) if fit_params is None else list(fit_params)
    groups = plan_groups(estimators, batched=batched, n_features=n_features, n_outputs=n_outputs)
    tasks = []
    for group in groups:
        parts: list[list[int]] = []
        for index in group:
            part = next((p for p in parts if _same_params(params[p[0]], params[index])), None)
            if part is None:
                parts.append([index])
            else:
                part.append(index)
        tasks += [
            MemberTask(
                [estimators[i] for i in part],
                [names[i] for i in part],
                [stems[i] for i in part],
                rows,
                [keys[i] for i in part],
                params[part[0]] or None,
            )
            for part in parts
        ]
    return tasks


def _same_params(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    a, b = a or {}, b or {}
    if a.keys() != b.keys():
        return False
    try:
        return all(a[key] is b[key] or joblib.hash(a[key]) == joblib.hash(b[key]) for key in a)
    except Exception:  # values that cannot be hashed: train apart
        return False


def task_data(
    task: MemberTask, X: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The task's rows of ``X`` and ``y`` and its fit parameters cut to the same rows."""
    params = dict(task.fit_params or {})
    if task.rows is None:
        return X, y, params
    return X[task.rows], y[task.rows], _check_method_params(X, params, task.rows)


def run_tasks(
    tasks: Sequence[MemberTask] | Iterator[MemberTask],
    X: np.ndarray,
    y: np.ndarray,
    *,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] | None = None,
    on_done: Callable[[MemberTask, list[FittedMember]], None] | None = None,
    n_jobs: int | None = None,
    failures: str = "raise",
) -> list[list[FittedMember]]:
    """Run every task on ``(X, y)``; for each task, its fitted members in order.

    With one worker (``n_jobs=None`` or 1, and no ``joblib.parallel_config`` saying otherwise)
    the tasks run here, one after another, and fit ``task.estimators`` in place. With more,
    joblib runs them on its active backend (loky processes, or Ray or Dask under
    ``joblib.parallel_config``): each worker gets ``max(1, cpu_count // workers)`` torch threads
    and, on one machine with several GPUs, a GPU of its own (:mod:`ensembles.parallel`); the
    fitted members come back as copies, in :class:`FittedMember`. Every member keeps its seed,
    so the order in which the tasks finish changes nothing.

    Parameters
    ----------
    tasks : sequence or iterator of MemberTask
        An iterator is drawn from lazily, one task as a worker comes free, so that the caller
        can decide the next task from the results so far (``on_done``): the pool search asks
        Optuna for its next trial there. The tasks then come back in the order they ran.
    X, y : ndarray
        The validated training data; each task fits on its ``rows`` of it.
    checkpoint_dir : str or path, optional
        Store each member as soon as it is trained; reuse stored ones (see the module).
    log : callable, optional
        Called with one line per task (which members are trained or reused).
    on_done : callable, optional
        Called as ``on_done(task, fitted)`` after each task, e.g. to advance a progress bar.
    n_jobs : int, optional
        Tasks to run at once (scikit-learn's meaning: ``-1`` all cores, ``None`` 1 unless a
        ``joblib.parallel_config`` sets it).
    failures : {"raise", "record"}, default="raise"
        ``"raise"``: the first task that raises stops the run (its error names the members).
        ``"record"``: a task that raises (an ``Exception``; Ctrl-C still stops the run) gives
        its members back as :class:`FittedMember`\\ s with ``estimator=None`` and the error, and
        the other tasks go on (the pool search's failed trials).

    With ``checkpoint_dir``, a member is stored by the worker that trained it, as soon as it is
    trained: when a task fails (or Ctrl-C stops the run), every member finished so far is on
    disk and the next call reuses it.
    """
    if failures not in ("raise", "record"):
        raise ValueError(f"failures must be 'raise' or 'record'; got {failures!r}")
    n_tasks = len(tasks) if isinstance(tasks, Sequence) else None  # None: drawn lazily
    workers = worker_count(n_jobs, np.iinfo(np.int32).max if n_tasks is None else n_tasks)
    if workers == 1:
        results: list[list[FittedMember]] = []
        for task in tasks:
            finished = sum(len(done) for done in results)
            fitted = run_task(
                task,
                X,
                y,
                checkpoint_dir=checkpoint_dir,
                log=log,
                failures=failures,
                finished=finished,
            )
            if on_done is not None:
                on_done(task, fitted)
            results.append(fitted)
        return results
    return _run_parallel(
        tasks, X, y, workers, n_jobs, checkpoint_dir, log, on_done, failures, n_tasks
    )


def _run_parallel(
    tasks: Sequence[MemberTask] | Iterator[MemberTask],
    X: np.ndarray,
    y: np.ndarray,
    workers: int,
    n_jobs: int | None,
    checkpoint_dir: str | os.PathLike[str] | None,
    log: Callable[[str], None] | None,
    on_done: Callable[[MemberTask, list[FittedMember]], None] | None,
    failures: str,
    n_tasks: int | None,
) -> list[list[FittedMember]]:
    backend = active_backend()
    lazy = n_tasks is None
    pulled: list[MemberTask] = []  # the tasks handed to joblib so far, by index
    iterator = iter(tasks)
    first = next(iterator, None)
    if first is None:
        return []
    # a lazy caller's tasks share their accelerator: the first tells whether a lease is needed
    lease = device_lease(
        backend, first.estimators if lazy else [e for task in tasks for e in task.estimators]
    )
    settings = WorkerTorch.for_workers(workers)
    if log is not None:
        count = "tasks drawn as workers come free" if lazy else f"{n_tasks} tasks"
        log(
            f"{count} on {workers} {type(backend).__name__} workers, "
            f"{settings.threads} torch thread(s) each"
        )
    results: dict[int, list[FittedMember]] = {}
    order: list[int] = []
    # one copy of X and y for all tasks: memory maps under loky (joblib's own), Ray's object
    # store under Ray
    X_shared, y_shared = share_arrays(backend, X, y)
    # results as they finish where the backend can hand them over one by one (loky, Dask);
    # all at the end otherwise (Ray's backend)
    streams = getattr(backend, "supports_return_generator", False)
    parallel = joblib.Parallel(
        n_jobs=n_jobs if n_jobs is not None else workers,
        return_as="generator_unordered" if streams else "list",
        # a lazy caller's next task depends on the results so far: draw no more than can run
        pre_dispatch="n_jobs" if lazy else "2*n_jobs",
    )

    def jobs() -> Iterator[Any]:
        for task in itertools.chain([first], iterator):
            pulled.append(task)
            yield joblib.delayed(_run_in_worker)(
                len(pulled) - 1, task, X_shared, y_shared, checkpoint_dir, settings, lease, failures
            )

    try:
        for index, fitted, lines in parallel(jobs()):
            results[index] = fitted
            order.append(index)
            for line in lines if log is not None else []:
                log(line)  # type: ignore[misc]
            if on_done is not None:
                on_done(pulled[index], fitted)
    except KeyboardInterrupt as interrupt:
        kept = (
            f"; they are kept in checkpoint_dir={str(checkpoint_dir)!r} and reused when fit "
            "is called again"
            if checkpoint_dir is not None
            else "; pass checkpoint_dir= to keep them"
        )
        interrupt.add_note(
            f"interrupted while {workers} workers trained members in parallel: {len(results)} "
            f"of {len(pulled)} tasks had finished{kept}"
        )
        raise
    # every task returned; an error or Ctrl-C raised above
    assert len(results) == len(pulled)
    return [results[index] for index in (order if lazy else range(len(pulled)))]


def _run_in_worker(
    index: int,
    task: MemberTask,
    X: Any,
    y: Any,
    checkpoint_dir: str | os.PathLike[str] | None,
    settings: WorkerTorch,
    lease: DeviceLease | None,
    failures: str,
) -> tuple[int, list[FittedMember], list[str]]:
    """One task in a joblib worker: the caller's torch settings with the worker's share of
    the threads, its device (when leased), its log lines."""
    X, y = fetch_arrays(X, y)
    lines: list[str] = []
    with settings.applied(), lease.lease() if lease is not None else nullcontext() as device:
        with on_cuda_device(device):
            fitted = run_task(
                task, X, y, checkpoint_dir=checkpoint_dir, log=lines.append, failures=failures
            )
    return index, fitted, lines


def run_task(
    task: MemberTask,
    X: np.ndarray,
    y: np.ndarray,
    *,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] | None = None,
    failures: str = "raise",
    finished: int = 0,
) -> list[FittedMember]:
    """Fit (or load) the members of one task; a failure names them (``failures="raise"``) or
    comes back in their :class:`FittedMember`\\ s (``"record"``; see :func:`run_tasks`).
    ``finished``: the members of earlier tasks that finished, for that note.

    Members still to train after the cache is read are fitted together by
    :func:`members.fit_batched` when there are two or more, each then credited with an equal
    share of the time.
    """
    X_task, y_task, params = task_data(task, X, y)
    paths = [
        checkpoint_path(checkpoint_dir, stem, estimator, X_task, y_task, params)
        for stem, estimator in zip(task.stems, task.estimators, strict=True)
    ]
    results: dict[int, FittedMember] = {}
    for index, path in enumerate(paths):
        cached = load_cached(path, task.estimators[index])
        if cached is not None:
            results[index] = cached
            if log is not None:
                log(f"reusing {task.names[index]}")
    todo = [index for index in range(len(task.estimators)) if index not in results]
    together = len(todo) > 1
    if log is not None and todo:
        suffix = " (together, batched)" if together else ""
        log(f"fitting {', '.join(task.names[i] for i in todo)}{suffix}")
    start = time.perf_counter()
    try:
        if together:
            fit_batched(
                [task.estimators[i] for i in todo],
                X_task,
                y_task,
                names=[task.names[i] for i in todo],
                **params,
            )
        elif todo:
            task.estimators[todo[0]].fit(X_task, y_task, **params)
    except Exception as exc:
        if failures != "record":
            _name_members(exc, task, todo, together, checkpoint_dir, finished + len(results))
            raise
        seconds = (time.perf_counter() - start) / max(len(todo), 1)
        error = f"{type(exc).__name__}: {exc}"
        for index in todo:
            results[index] = FittedMember(None, seconds, error=error)
        if log is not None:
            log(f"{' and '.join(task.names[i] for i in todo)} failed ({error})")
        return [results[index] for index in range(len(task.estimators))]
    except KeyboardInterrupt as exc:
        _name_members(exc, task, todo, together, checkpoint_dir, finished + len(results))
        raise
    seconds = (time.perf_counter() - start) / max(len(todo), 1)
    for index in todo:
        store_cached(paths[index], task.estimators[index], seconds)
        results[index] = FittedMember(task.estimators[index], seconds)
    return [results[index] for index in range(len(task.estimators))]


def _name_members(
    exc: BaseException,
    task: MemberTask,
    todo: list[int],
    together: bool,
    checkpoint_dir: str | os.PathLike[str] | None,
    finished: int,
) -> None:
    """Add a note to ``exc`` naming the members whose training raised it, and what became of
    the ``finished`` members trained (or loaded) before them."""
    if checkpoint_dir is None:
        kept = (
            "; pass checkpoint_dir= to keep the members already trained"
            if finished
            else "; no member had finished before it (pass checkpoint_dir= to keep the members "
            "a fit trains)"
        )
    elif finished:
        members = "member trained before it is"
        if finished > 1:
            members = "members trained before it are"
        kept = (
            f"; the {finished} {members} kept in checkpoint_dir={str(checkpoint_dir)!r} and "
            "reused when fit is called again"
        )
    else:
        kept = f"; no member had finished before it (checkpoint_dir={str(checkpoint_dir)!r})"
    what = " and ".join(task.names[i] for i in todo)
    how = " (trained together by the batched engine)" if together else ""
    event = "interrupted" if isinstance(exc, KeyboardInterrupt) else "raised"
    exc.add_note(f"{event} while fitting ensemble {what}{how}{kept}")


def load_fitted(
    task: MemberTask,
    X: np.ndarray,
    y: np.ndarray,
    checkpoint_dir: str | os.PathLike[str] | None,
) -> list[FittedMember | None]:
    """The members of ``task`` that ``checkpoint_dir`` holds, trained on the task's rows of
    ``(X, y)``; ``None`` for each one it does not hold. Nothing is trained."""
    X_task, y_task, params = task_data(task, X, y)
    return [
        load_cached(
            checkpoint_path(checkpoint_dir, stem, estimator, X_task, y_task, params), estimator
        )
        for stem, estimator in zip(task.stems, task.estimators, strict=True)
    ]
