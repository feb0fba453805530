"""The pool search: spaces, selection over all trials, failures, resume, Pareto, parallel."""

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import log_loss

from combiners import WeightedCombiner
from ensembles import EnsembleSearchClassifier, EnsembleSearchRegressor
from ensembles.search_space import PRESETS, estimator_params, parse_space
from members import NeuralClassifier

FITS: list[tuple[float, int | None]] = []
INTERRUPT_AT: list[int] = []


class Recorded(LogisticRegression):
    """Records every fit that ran to the end by (C, seed); raises KeyboardInterrupt (Ctrl-C)
    on the fit numbered in INTERRUPT_AT."""

    def fit(self, X, y):
        if INTERRUPT_AT and len(FITS) == INTERRUPT_AT[0]:
            INTERRUPT_AT.clear()
            raise KeyboardInterrupt
        super().fit(X, y)
        FITS.append((self.C, self.random_state))
        return self


LOG_ENV, HANG_ENV = "SEARCH_TEST_LOG", "SEARCH_TEST_HANG"
ROOT = Path(__file__).resolve().parents[2]


class Logged(LogisticRegression):
    """Appends its C to the file $SEARCH_TEST_LOG after each fit (visible across processes);
    with $SEARCH_TEST_HANG=n, a fit that starts when n fits are logged hangs (to be killed)."""

    def fit(self, X, y):
        log = Path(os.environ[LOG_ENV])
        hang = os.environ.get(HANG_ENV)
        if hang is not None and log.exists() and len(log.read_text().split()) >= int(hang):
            time.sleep(600)
        super().fit(X, y)
        with open(log, "a") as file:
            file.write(f"{self.C!r}\n")
        return self


# a search in another process, on the classification_data fixture's data
SCRIPT = """
import sys
import numpy as np
from sklearn.datasets import make_classification
from ensembles import EnsembleSearchClassifier
from tests.ensembles.test_search import LOGISTIC_SPACE, Logged
X, y = make_classification(
    n_samples=240, n_features=8, n_informative=5, n_classes=3, random_state=0
)
EnsembleSearchClassifier(
    Logged(max_iter=300), space=LOGISTIC_SPACE, n_trials=int(sys.argv[2]), storage=sys.argv[1],
    random_state=0,
).fit(X.astype(np.float64), y)
"""


def _search_process(storage, n_trials, env):
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(storage), str(n_trials)],
        env={**os.environ, **env},
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )


class Diverging(LogisticRegression):
    """Predicts NaN for C above 100 (a member whose training went wrong without raising)."""

    def predict_proba(self, X):
        proba = super().predict_proba(X)
        return proba * np.nan if self.C > 100 else proba


@pytest.fixture(autouse=True)
def clear():
    FITS.clear()
    INTERRUPT_AT.clear()


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


LOGISTIC_SPACE = {"C": (1e-3, 1e2, "log")}


# -- spaces ------------------------------------------------------------------------------------
def test_presets_parse_and_fit_their_backbones():
    for name in PRESETS:
        for alternative in parse_space(name):
            assert alternative.searched()
    any_space = parse_space("any")
    assert [a.label for a in any_space] == ["mlp", "cnn1d", "resnet"]


@pytest.mark.parametrize(
    ("space", "error", "match"),
    [
        ("deep", ValueError, "not a preset"),
        ({"lr": []}, ValueError, "empty list"),
        ({"lr": (1e-2, 1e-4)}, ValueError, "low < high"),
        ({"lr": (0.0, 1.0, "log")}, ValueError, "low > 0"),
        ({"lr": (1e-4, 1e-2, "ln")}, ValueError, "must be 'log'"),
        ({"lr": ("a", "b")}, TypeError, "numbers"),
        ([{"lr": 1.0}, "mlp"], TypeError, r"space\[1\]"),
        ({"lr": {"low": 1e-4, "top": 1.0}}, ValueError, "keys low, high"),
        (3, TypeError, "must be an instance of .str."),
    ],
)
def test_a_malformed_space_is_refused_by_name(space, error, match, classification_data):
    X, y = classification_data
    with pytest.raises(error, match=match):
        EnsembleSearchClassifier(space=space, n_trials=1).fit(X, y)


def test_a_range_can_be_written_as_a_mapping_for_yaml():
    [alternative] = parse_space({"lr": {"low": 1e-4, "high": 1e-2, "log": True}, "n": [[64], [8]]})
    lr, hidden = alternative.params
    assert (lr.kind, lr.low, lr.high, lr.log) == ("float", 1e-4, 1e-2, True)
    assert hidden.kind == "categorical" and hidden.values == ([64], [8])


def test_module_kwargs_keys_update_the_templates_backbone_keywords():
    template = NeuralClassifier("cnn1d", module_kwargs={"kernel_size": 3, "dropout": 0.1})
    same = estimator_params(template, {"module_kwargs__dropout": 0.3, "lr": 1e-3})
    assert same == {"lr": 1e-3, "module_kwargs": {"kernel_size": 3, "dropout": 0.3}}
    # another backbone does not inherit the template's keywords
    other = estimator_params(template, {"module": "mlp", "module_kwargs__hidden": (64,)})
    assert other == {"module": "mlp", "module_kwargs": {"hidden": (64,)}}


def test_a_space_that_does_not_fit_the_estimator_is_named(classification_data):
    X, y = classification_data
    search = EnsembleSearchClassifier(LogisticRegression(), space={"depth": [1, 2]}, n_trials=1)
    with pytest.raises(ValueError, match="space does not fit estimator LogisticRegression"):
        search.fit(X, y)


@pytest.mark.parametrize(
    ("objectives", "match"),
    [(("latency", "nll"), "first objective"), (("nll", "speed"), "distinct names"), ((), "names")],
)
def test_bad_objectives_are_refused(objectives, match, classification_data):
    X, y = classification_data
    with pytest.raises(ValueError, match=match):
        EnsembleSearchClassifier(objectives=objectives).fit(X, y)


# -- the search --------------------------------------------------------------------------------
def test_selection_runs_over_all_trials_and_beats_the_best_trial_on_held_out_data(digits):
    X, y = digits
    search = EnsembleSearchClassifier(
        NeuralClassifier(max_epochs=15), n_trials=6, ensemble_size=5, random_state=0
    ).fit(X, y)
    trials = search.trials_
    assert len(trials) == 6 and set(trials["state"]) == {"COMPLETE"}
    assert {"module_kwargs__hidden", "optimizer", "lr", "l1", "nll", "latency_ms"} <= set(trials)
    # held-out error rates (the failure column, empty here, is apart from them)
    assert trials["error"].between(0, 1).all() and trials["failure"].isna().all()
    # six different configurations, each with its own seed
    assert trials["seed"].nunique() == 6 and trials["lr"].nunique() == 6
    chosen = trials[trials["weight"] > 0]
    np.testing.assert_allclose(search.weights_, chosen["weight"].to_numpy())
    assert search.weights_.sum() == pytest.approx(1.0)
    assert len(search.members_) == len(chosen) <= 5
    assert list(search.ensemble_.named_members_) == [f"trial{n}" for n in chosen["number"]]
    # the chosen members are the trials' own fitted networks (held-out cv: used as trained)
    for number, member in zip(chosen["number"], search.members_, strict=True):
        assert member is search.trial_members_[number]
    # the selection starts from the best trial and keeps the best point: never worse on the
    # held-out rows it was chosen on
    held = search.held_out_index_
    assert len(held) == 120  # cv=0.2 of 600
    fused = search.predict_proba(X[held])
    assert log_loss(y[held], fused, labels=search.classes_) <= trials["nll"].min() + 1e-9


def test_a_diverging_trial_is_recorded_as_failed_and_the_search_completes(classification_data):
    X, y = classification_data
    search = EnsembleSearchClassifier(
        NeuralClassifier(max_epochs=10),
        space={"lr": [1e-2, 1e6], "optimizer": "sgd"},
        n_trials=6,
        ensemble_size=3,
        random_state=0,
    )
    with pytest.warns(UserWarning, match="failed and is left out"):
        search.fit(X, y)
    trials = search.trials_
    failed = trials[trials["state"] == "FAIL"]
    assert len(failed) >= 1 and (failed["lr"] == 1e6).all()
    assert failed["failure"].str.contains("diverged|NaN|infinite").all()
    assert (failed["weight"] == 0).all() and failed["nll"].isna().all()
    assert (trials[trials["state"] == "COMPLETE"]["lr"] == 1e-2).all()
    assert len(trials) == 6 and search.score(X, y) > 0.5


def test_a_member_that_predicts_nan_fails_its_trial(classification_data):
    X, y = classification_data
    search = EnsembleSearchClassifier(
        Diverging(max_iter=300), space={"C": [1.0, 1000.0]}, n_trials=5, random_state=1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        search.fit(X, y)
    failed = search.trials_[search.trials_["state"] == "FAIL"]
    assert len(failed) >= 1 and (failed["C"] == 1000.0).all()
    assert failed["failure"].str.contains("NaN").all()


def test_when_every_trial_fails_the_error_says_so(classification_data):
    X, y = classification_data
    search = EnsembleSearchClassifier(
        NeuralClassifier(max_epochs=3, optimizer="sgd"), space={"lr": [1e6]}, n_trials=2
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match="every one of the 2 trials failed"):
            search.fit(X, y)


def test_an_empty_space_searches_seeds_only(classification_data):
    X, y = classification_data
    search = EnsembleSearchClassifier(
        NeuralClassifier(max_epochs=5), space={}, n_trials=3, random_state=0
    ).fit(X, y)
    assert search.trials_["seed"].nunique() == 3
    assert {"lr", "module_kwargs__hidden"}.isdisjoint(search.trials_.columns)


def test_extra_seeds_rerun_the_chosen_configurations_and_select_again(classification_data):
    X, y = classification_data
    search = EnsembleSearchClassifier(
        NeuralClassifier(max_epochs=5), n_trials=4, ensemble_size=3, extra_seeds=2, random_state=0
    ).fit(X, y)
    trials = search.trials_
    seeds = trials[trials["seed_of"].notna()]
    first = trials[trials["seed_of"].isna()]
    assert len(first) == 4 and len(seeds) % 2 == 0 and len(seeds) >= 2
    for _, row in seeds.iterrows():
        parent = first[first["number"] == row["seed_of"]].iloc[0]
        assert row["lr"] == parent["lr"] and row["seed"] != parent["seed"]
    names = list(search.ensemble_.named_members_)
    assert all(name.startswith("trial") for name in names)
    assert search.weights_.sum() == pytest.approx(1.0)


def test_folds_refit_the_chosen_configurations_on_all_the_data(classification_data):
    X, y = classification_data
    search = EnsembleSearchClassifier(
        LogisticRegression(max_iter=300), space=LOGISTIC_SPACE, n_trials=3, cv=3, random_state=0
    ).fit(X, y)
    assert search.trial_members_ == {}
    # 3 trials x 3 folds, then each chosen configuration once on all rows
    chosen = search.trials_[search.trials_["weight"] > 0]
    for member, C in zip(search.members_, chosen["C"], strict=True):
        assert member.C == C
        reference = LogisticRegression(max_iter=300, C=C).fit(X, y)
        np.testing.assert_allclose(member.coef_, reference.coef_)


def test_another_selection_rule_can_choose(classification_data):
    X, y = classification_data
    search = EnsembleSearchClassifier(
        LogisticRegression(max_iter=300),
        space=LOGISTIC_SPACE,
        n_trials=4,
        selection=WeightedCombiner(),
        random_state=0,
    ).fit(X, y)
    assert search.weights_.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="learns its weights"):
        EnsembleSearchClassifier(selection=WeightedCombiner([1.0])).fit(X, y)


def test_pareto_front_of_nll_and_latency(digits):
    X, y = digits
    search = EnsembleSearchClassifier(
        NeuralClassifier(max_epochs=10),
        n_trials=8,
        objectives=("nll", "latency"),
        random_state=0,
    ).fit(X, y)
    front = search.pareto_
    done = search.trials_[search.trials_["state"] == "COMPLETE"]
    # how many trials the front holds turns on measured latencies (one trial can be both the
    # most accurate and the fastest, as a busy CI machine once made it); the front's maths on
    # fixed rows with a front of three: pareto_front's example
    assert 1 <= len(front) <= len(done)
    assert front["nll"].is_monotonic_increasing
    # nothing on the front is beaten on both objectives; everything off it is
    for _, row in done.iterrows():
        beaten = ((done["nll"] <= row["nll"]) & (done["latency_ms"] <= row["latency_ms"])) & (
            (done["nll"] < row["nll"]) | (done["latency_ms"] < row["latency_ms"])
        )
        assert beaten.any() != (row["number"] in set(front["number"]))
    # one network under a latency limit, as the search guide (docs/guide/search.md) shows
    limit = front["latency_ms"].median()
    pick = front[front["latency_ms"] <= limit].iloc[0]
    network = search.trial_members_[pick["number"]]
    assert network.predict(X[:5]).shape == (5,)


def test_regression_search(regression_data):
    X, y = regression_data
    search = EnsembleSearchRegressor(
        Ridge(),
        space={"alpha": (1e-3, 1e3, "log")},
        n_trials=5,
        ensemble_size=3,
        objectives=("rmse", "latency"),
        random_state=0,
    ).fit(X, y)
    assert search.predict(X).shape == (len(X),)
    assert search.trials_["rmse"].notna().all() and search.score(X, y) > 0.9
    with pytest.raises(ValueError, match="distinct names"):
        EnsembleSearchRegressor(objectives=("nll",)).fit(X, y)


def test_trials_run_in_parallel_and_give_the_same_kind_of_result(classification_data):
    X, y = classification_data
    search = EnsembleSearchClassifier(
        LogisticRegression(max_iter=300),
        space=LOGISTIC_SPACE,
        n_trials=6,
        n_jobs=2,
        random_state=0,
    ).fit(X, y)
    assert len(search.trials_) == 6 and (search.trials_["state"] == "COMPLETE").all()
    # constant_liar: trials asked together are not the same configuration
    assert search.trials_["C"].nunique() == 6


# -- storage: resume and sharing ----------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".db", ".log"])
def test_an_interrupted_search_resumes_without_running_a_trial_twice(
    classification_data, tmp_path, suffix
):
    X, y = classification_data
    storage = tmp_path / f"study{suffix}"

    def search(n_trials):
        return EnsembleSearchClassifier(
            Recorded(max_iter=300),
            space=LOGISTIC_SPACE,
            n_trials=n_trials,
            storage=storage,
            random_state=0,
        )

    INTERRUPT_AT.append(3)  # Ctrl-C during the fourth trial's training
    with pytest.raises(KeyboardInterrupt):
        search(6).fit(X, y)
    assert len(FITS) == 3
    finished = list(FITS)
    assert (tmp_path / f"study{suffix}.members").is_dir()

    resumed = search(6).fit(X, y)
    # three trials were loaded, three new ones trained: every fit that ran to the end ran once
    assert len(FITS) == 6 and len(set(FITS)) == 6 and FITS[:3] == finished
    trials = resumed.trials_
    assert list(trials["number"]) == [0, 1, 2, 4, 5, 6]  # trial 3 was interrupted
    assert (trials["state"] == "COMPLETE").all()

    # a finished search asked again trains nothing, and a larger n_trials adds to it
    search(6).fit(X, y)
    assert len(FITS) == 6
    search(7).fit(X, y)
    assert len(FITS) == 7


def test_a_storage_of_another_search_is_refused(classification_data, tmp_path):
    X, y = classification_data
    storage = tmp_path / "study.db"
    EnsembleSearchClassifier(
        LogisticRegression(max_iter=300), space=LOGISTIC_SPACE, n_trials=1, storage=storage
    ).set_params(random_state=0).fit(X, y)
    other = EnsembleSearchClassifier(
        LogisticRegression(max_iter=300), space=LOGISTIC_SPACE, n_trials=2, storage=storage
    ).set_params(random_state=0)
    with pytest.raises(ValueError, match="of another search"):
        other.fit(X[:200], y[:200])


def test_a_resumed_search_with_another_space_is_refused(classification_data, tmp_path):
    X, y = classification_data
    storage = tmp_path / "study.log"
    kwargs = {"n_trials": 1, "storage": storage, "random_state": 0}
    EnsembleSearchClassifier(LogisticRegression(max_iter=300), space=LOGISTIC_SPACE, **kwargs).fit(
        X, y
    )
    with pytest.raises(ValueError, match="does not fit space"):
        EnsembleSearchClassifier(
            LogisticRegression(max_iter=300), space={"tol": [1e-4, 1e-3]}, **kwargs
        ).fit(X, y)


def test_the_searched_ensemble_saves_and_loads_without_pickle(classification_data, tmp_path):
    X, y = classification_data
    search = EnsembleSearchClassifier(
        NeuralClassifier(max_epochs=5), n_trials=3, ensemble_size=2, random_state=0
    ).fit(X, y)
    path = search.save(tmp_path / "search")
    loaded = EnsembleSearchClassifier.load(path)
    np.testing.assert_allclose(loaded.predict_proba(X), search.predict_proba(X))
    assert loaded.trials_.equals(search.trials_)


def test_a_killed_search_resumes_and_its_unfinished_trial_does_not_count(
    classification_data, tmp_path, monkeypatch
):
    X, y = classification_data
    log, storage = tmp_path / "fits.log", tmp_path / "study.log"
    process = _search_process(storage, 5, {LOG_ENV: str(log), HANG_ENV: "2"})
    deadline = time.monotonic() + 120
    while not (log.exists() and len(log.read_text().split()) == 2):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "the search process did not train two trials"
        time.sleep(0.2)
    time.sleep(1.0)  # the third trial is training (hanging)
    process.kill()  # SIGKILL: no handler runs; the third trial stays RUNNING in the storage
    process.wait()
    first = log.read_text().split()

    monkeypatch.setenv(LOG_ENV, str(log))
    monkeypatch.delenv(HANG_ENV, raising=False)
    search = EnsembleSearchClassifier(
        Logged(max_iter=300), space=LOGISTIC_SPACE, n_trials=5, storage=storage, random_state=0
    ).fit(X, y)
    fits = log.read_text().split()
    # the two finished trials were loaded, not trained again; three new ones were trained
    assert fits[:2] == first and len(fits) == 5 and len(set(fits)) == 5
    # trial 2 died with its process: failed as interrupted, not counted, not in trials_
    assert list(search.trials_["number"]) == [0, 1, 3, 4, 5]


def test_two_processes_search_one_study_together(classification_data, tmp_path, monkeypatch):
    X, y = classification_data
    log, storage = tmp_path / "fits.log", tmp_path / "study.log"
    processes = [_search_process(storage, 8, {LOG_ENV: str(log)}) for _ in range(2)]
    for process in processes:
        assert process.wait(timeout=300) == 0, process.stderr.read()
    fits = log.read_text().split()
    # every trial was trained by one process only; each process asked TPE with its own draw
    assert len(fits) == len(set(fits))
    # each checks the count before asking, so together they may overshoot by one each
    assert 8 <= len(fits) <= 10
    monkeypatch.setenv(LOG_ENV, str(log))
    search = EnsembleSearchClassifier(
        Logged(max_iter=300), space=LOGISTIC_SPACE, n_trials=8, storage=storage, random_state=0
    ).fit(X, y)
    assert log.read_text().split() == fits  # nothing trained again
    assert len(search.trials_) == len(fits) and (search.trials_["state"] == "COMPLETE").all()


def test_feature_names_are_recorded_and_checked(classification_data):
    import pandas as pd

    X, y = classification_data
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    search = EnsembleSearchClassifier(
        LogisticRegression(max_iter=300), space=LOGISTIC_SPACE, n_trials=2, random_state=0
    ).fit(frame, y)
    assert list(search.feature_names_in_) == list(frame.columns)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        np.testing.assert_allclose(search.predict_proba(frame), search.predict_proba(X))
    with pytest.raises(ValueError, match="feature names"):
        search.predict(frame.rename(columns={"f0": "other"}))
    with pytest.raises(ValueError, match="features"):
        search.predict(X[:, :3])
