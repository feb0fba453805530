"""The member-training service: tasks, grouping, rows, keys, timing, failures, the cache."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from ensembles.member_cache import FittedMember, load_or_train
from ensembles.training import MemberTask, plan_tasks, run_tasks
from members import NeuralClassifier, replicate

SMALL = NeuralClassifier(module_kwargs={"hidden": (16,)}, max_epochs=2, random_state=0)


def test_plan_tasks_groups_replicas_and_carries_rows_and_keys():
    pool = [m for _, m in replicate(SMALL, 3)] + [LogisticRegression()]
    rows = np.arange(10)
    tasks = plan_tasks(
        pool,
        names=["a", "b", "c", "lr"],
        stems=["a", "b", "c", "lr"],
        batched=True,
        n_features=8,
        n_outputs=3,
        rows=rows,
        keys=[("f0", i) for i in range(4)],
    )
    assert [task.names for task in tasks] == [["a", "b", "c"], ["lr"]]
    assert [task.keys for task in tasks] == [[("f0", 0), ("f0", 1), ("f0", 2)], [("f0", 3)]]
    assert all(task.rows is rows for task in tasks)
    alone = plan_tasks(
        pool, names=list("abcd"), stems=list("abcd"), batched=False, n_features=8, n_outputs=3
    )
    assert [len(task.estimators) for task in alone] == [1, 1, 1, 1]


def test_a_task_fits_on_its_rows_only(classification_data):
    X, y = classification_data
    rows = np.flatnonzero(y != 2)  # two of the three classes
    task = MemberTask([LogisticRegression()], ["member 'lr'"], ["lr"], rows=rows)
    [[fitted]] = run_tasks([task], X, y)
    assert isinstance(fitted, FittedMember) and fitted.fit_seconds > 0 and not fitted.reused
    assert fitted.estimator.classes_.tolist() == [0, 1]


def test_run_tasks_reports_each_task_and_reuses_the_cache(classification_data, tmp_path):
    X, y = classification_data
    done = []

    def tasks():
        return plan_tasks(
            [m for _, m in replicate(SMALL, 2)],
            names=["member 'a'", "member 'b'"],
            stems=["a", "b"],
            batched=True,
            n_features=X.shape[1],
            n_outputs=3,
        )

    first = run_tasks(tasks(), X, y, checkpoint_dir=tmp_path, on_done=lambda t, f: done.append(f))
    assert len(done) == 1 and [m.reused for m in first[0]] == [False, False]
    lines = []
    again = run_tasks(tasks(), X, y, checkpoint_dir=tmp_path, log=lines.append)
    assert [m.reused for m in again[0]] == [True, True]
    assert lines == ["reusing member 'a'", "reusing member 'b'"]
    for old, new in zip(first[0], again[0], strict=True):
        np.testing.assert_array_equal(
            old.estimator.predict_proba(X), new.estimator.predict_proba(X)
        )
        assert old.fit_seconds == new.fit_seconds


class Broken(LogisticRegression):
    def fit(self, X, y):
        raise RuntimeError("out of memory")


def test_a_failing_task_names_its_members(classification_data):
    X, y = classification_data
    task = MemberTask([Broken()], ["member 'wild' on fold 3"], ["wild"])
    with pytest.raises(RuntimeError, match="out of memory") as info:
        run_tasks([task], X, y)
    notes = " ".join(info.value.__notes__)
    assert "member 'wild' on fold 3" in notes and "pass checkpoint_dir=" in notes


def test_a_task_needs_one_name_and_stem_per_estimator():
    with pytest.raises(ValueError, match="one name and one stem per estimator; got 1 estimators"):
        MemberTask([LogisticRegression()], [], ["lr"])


def test_load_or_train_stores_once(tmp_path):
    calls = []

    def train():
        calls.append(1)
        return LogisticRegression().fit([[0.0], [1.0]], [0, 1])

    path = tmp_path / "model"
    first = load_or_train(path, train, like=LogisticRegression())
    second = load_or_train(path, train, like=LogisticRegression())
    assert calls == [1] and second.reused and second.fit_seconds == first.fit_seconds


class _Broken(LogisticRegression):
    def fit(self, X, y):
        raise RuntimeError("out of memory")


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_recorded_failures_come_back_and_the_other_tasks_go_on(classification_data, n_jobs):
    X, y = classification_data
    tasks = [
        MemberTask([_Broken()], ["member 'broken'"], ["broken"]),
        MemberTask([LogisticRegression(max_iter=300)], ["member 'lr'"], ["lr"]),
    ]
    [[broken], [fitted]] = run_tasks(tasks, X, y, failures="record", n_jobs=n_jobs)
    assert broken.estimator is None and broken.error == "RuntimeError: out of memory"
    assert fitted.error is None and fitted.estimator.score(X, y) > 0.5
    with pytest.raises(ValueError, match="failures must be 'raise' or 'record'"):
        run_tasks(tasks, X, y, failures="ignore")


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_tasks_drawn_lazily_can_depend_on_the_results_so_far(classification_data, n_jobs):
    X, y = classification_data
    scores: list[float] = []

    def tasks():
        C = 1.0
        for step in range(4):
            yield MemberTask([LogisticRegression(C=C, max_iter=300)], [f"step {step}"], ["lr"])
            C = 0.1 if not scores else C / 2  # decided from the results seen so far

    def done(task, fitted):
        scores.append(fitted[0].estimator.score(X, y))

    results = run_tasks(tasks(), X, y, on_done=done, n_jobs=n_jobs)
    assert len(results) == 4 == len(scores)
    # with one worker each task is drawn after the previous one finished
    if n_jobs is None:
        assert [r[0].estimator.C for r in results] == [1.0, 0.5, 0.25, 0.125]
