"""Ensemble studies from YAML: outputs, caching, greedy subsets, regression, bad configs."""

import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from lightning.pytorch.callbacks import Callback
from sklearn.linear_model import LogisticRegression

from experiments.study import Study, main, read_config

FITS: list[float] = []
RUNS: list[str] = []


class CountingCallback(Callback):
    """A user's own Lightning callback: records each training run."""

    def __init__(self, label: str = "run") -> None:
        self.label = label

    def on_fit_start(self, trainer, pl_module):
        RUNS.append(self.label)


class Recorded(LogisticRegression):
    """Records each fit, so a test can see which members were trained and which reused."""

    def fit(self, X, y):
        FITS.append(self.C)
        return super().fit(X, y)


TINY = """
data: {source: digits, test_size: 0.3}
members:
  - name: mlp
    estimator:
      class_path: members.NeuralClassifier
      init_args: {max_epochs: 2, module_kwargs: {hidden: [16]}}
    seeds: [0, 1]
  - name: lr
    estimator:
      class_path: tests.experiments.test_study.Recorded
      init_args: {C: 0.5, max_iter: 300}
combiners:
  mean: combiners.MeanCombiner
  weighted: {class_path: combiners.WeightedCombiner}
draws: 2
calibration: temperature
distill:
  student:
    class_path: members.NeuralClassifier
    init_args: {max_epochs: 2, module_kwargs: {hidden: [16]}}
  combiner: weighted
"""


def write(tmp_path, text, name="study.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_study_writes_table_summary_plots_and_reuses_members(tmp_path, capsys):
    config = write(tmp_path, TINY)
    out = tmp_path / "out"
    FITS.clear()
    assert main([str(config), "--output", str(out), "--quiet"]) == 0
    assert FITS == [0.5]
    table = pd.read_csv(out / "results.csv")
    # 3 members; sizes 1..3 with 2, 2, 1 draws for each of 2 combiners; 1 student
    assert list(table.kind.value_counts().sort_index().items()) == [
        ("ensemble", 10),
        ("member", 3),
        ("student", 1),
    ]
    assert set(table.members[table.kind == "member"]) == {"mlp_s0", "mlp_s1", "lr"}
    metrics = table[["accuracy", "nll", "brier", "ece", "fit_s", "predict_s"]]
    assert np.isfinite(metrics.to_numpy()).all()
    assert json.loads((out / "results.json").read_text())[0]["kind"] == "member"
    ensembles = table[table.kind == "ensemble"]
    assert set(ensembles.fused_by[ensembles.combiner == "mean"]) == {"MeanCombiner()"}
    assert ensembles.guard[ensembles["size"] < 3].isna().all()  # the full pool is guarded
    summary = (out / "summary.md").read_text()
    assert "| weighted[3]" in summary and "student (weighted)" in summary
    plots = sorted(p.name for p in (out / "plots").iterdir())
    assert plots == ["disagreement.png", "metric_vs_size.png", "reliability.png"]
    assert (out / "logs" / "mlp_s0" / "csv" / "version_0" / "metrics.csv").exists()
    assert "weighted[3]" in capsys.readouterr().out

    # a rerun trains nothing and reproduces every metric
    FITS.clear()
    assert main([str(config), "--output", str(out), "--quiet"]) == 0
    assert FITS == []
    again = pd.read_csv(out / "results.csv")
    columns = ["name", "members", "accuracy", "nll", "brier", "ece", "disagreement"]
    pd.testing.assert_frame_equal(again[columns], table[columns])
    trained = table.kind != "ensemble"  # a reused member (or student) keeps its fit time
    pd.testing.assert_series_equal(again.fit_s[trained], table.fit_s[trained])


WITH_CALLBACKS = """
data: {source: iris, test_size: 0.3}
members:
  - name: net
    estimator:
      class_path: members.NeuralClassifier
      init_args:
        max_epochs: 3
        module_kwargs: {hidden: [8]}
        callbacks:
          - class_path: lightning.pytorch.callbacks.EarlyStopping
            init_args: {monitor: train_loss}
          - {class_path: tests.experiments.test_study.CountingCallback, init_args: {label: net}}
    seeds: [0, 1]
"""


def test_members_trained_with_callbacks_are_cached_and_reused(tmp_path, recwarn):
    config = write(tmp_path, WITH_CALLBACKS)
    out = tmp_path / "out"
    RUNS.clear()
    assert main([str(config), "--output", str(out), "--quiet"]) == 0
    assert RUNS == ["net", "net"]
    first = pd.read_csv(out / "results.csv")
    RUNS.clear()
    assert main([str(config), "--output", str(out), "--quiet"]) == 0
    assert RUNS == []  # both members came from the cache
    assert not [w for w in recwarn if "cannot be" in str(w.message)]  # kept, and reused
    columns = ["name", "accuracy", "nll"]
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv")[columns], first[columns])


BUILT_TO_LOSE = """
data: {source: digits, test_size: 0.3}
members:
  - name: lr
    estimator:
      class_path: sklearn.linear_model.LogisticRegression
      init_args: {max_iter: 2000}
  - name: weak
    estimator:
      class_path: members.NeuralClassifier
      init_args: {max_epochs: 1, lr: 0.0001, module_kwargs: {hidden: [4]}}
    seeds: [0, 1, 2, 3]
combiners:
  mean: combiners.MeanCombiner
  auto: combiners.AutoCombiner
subsets: greedy
"""


def test_the_study_guards_the_full_pool_and_says_what_auto_chose(tmp_path, capsys):
    # one strong member and four weak ones: the plain mean loses to the strong one
    config = write(tmp_path, BUILT_TO_LOSE)
    assert main([str(config), "--output", str(tmp_path / "out"), "--quiet"]) == 0
    said = capsys.readouterr()
    printed = said.out + said.err
    assert re.search(
        r"UserWarning: study combiner 'mean'.*worse than its best member 'lr'", printed
    )
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    full = table[(table.kind == "ensemble") & (table["size"] == 5)].set_index("combiner")
    assert full.loc["mean", "guard"] == "worse than lr"
    # learned weights put almost all the weight on lr: far better than the mean
    assert full.loc["auto", "nll"] < 0.5 * full.loc["mean", "nll"]
    assert full.loc["auto", "fused_by"] in ("auto (weighted)", "auto (selection)")
    assert "| auto[5] (" in (tmp_path / "out" / "summary.md").read_text()


def test_widened_study_reuses_the_members_it_has(tmp_path):
    out = tmp_path / "out"
    config = read_config(write(tmp_path, TINY))
    config.distill = None
    Study(config, out, quiet=True).run()
    config.members[0].seeds = [0, 1, 2]
    FITS.clear()
    table = Study(config, out, quiet=True).run()
    assert FITS == []  # the new seed is an MLP; the recorded member was reused
    assert (table.kind == "member").sum() == 4


def test_greedy_subsets_are_nested(tmp_path):
    config = read_config(write(tmp_path, TINY))
    config.subsets, config.distill, config.calibration = "greedy", None, None
    table = Study(config, tmp_path / "out", quiet=True).run()
    chosen = [
        set(row.split()) for row in table[(table.combiner == "mean")].sort_values("size").members
    ]
    assert [len(s) for s in chosen] == [1, 2, 3]
    assert chosen[0] < chosen[1] < chosen[2]


def test_regression_study(tmp_path):
    config = write(
        tmp_path,
        """
        data: {source: diabetes}
        members:
          - name: net
            estimator:
              class_path: members.NeuralRegressor
              init_args: {max_epochs: 3, module_kwargs: {hidden: [16]}}
          - name: ridge
            estimator: sklearn.linear_model.Ridge
        combiners: {mean: combiners.MeanCombiner, stacking: combiners.StackingCombiner}
        sizes: [2]
        """,
    )
    assert main([str(config), "--output", str(tmp_path / "out"), "--quiet"]) == 0
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert {"rmse", "mae", "r2"} <= set(table.columns)
    assert len(table) == 2 + 2
    plots = sorted(p.name for p in (tmp_path / "out" / "plots").iterdir())
    assert plots == ["disagreement.png", "metric_vs_size.png"]


SEARCH = """
data: {source: digits, test_size: 0.3}
members:
  - name: lr
    estimator:
      class_path: tests.experiments.test_study.Recorded
      init_args: {C: 0.5, max_iter: 300}
search:
  space: {C: {low: 0.01, high: 10.0, log: true}}
  n_trials: 4
  ensemble_size: 3
  objectives: [nll, latency]
"""


def test_a_search_study_compares_with_a_deep_ensemble_and_resumes(tmp_path):
    config = write(tmp_path, SEARCH)
    out = tmp_path / "out"
    FITS.clear()
    assert main([str(config), "--output", str(out), "--quiet"]) == 0
    # one pool member, 4 searched trials, 4 seeds of the template (the deep ensemble)
    table = pd.read_csv(out / "results.csv")
    searched = table[table.kind == "search"]
    assert [name.split("[")[0] for name in searched.name] == ["searched", "deep ensemble"]
    assert np.isfinite(searched[["accuracy", "nll", "fit_s"]].to_numpy()).all()
    trials = pd.read_csv(out / "search_searched.csv")
    assert len(trials) == 4 and trials["C"].nunique() == 4
    assert trials["error"].between(0, 1).all() and trials["latency_ms"].gt(0).all()
    assert len(pd.read_csv(out / "search_deep.csv")) == 4
    plots = sorted(p.name for p in (out / "plots").iterdir())
    assert {"search_trials.png", "search_pareto.png"} <= set(plots)
    summary = (out / "summary.md").read_text()
    assert "## Search" in summary and "| searched[" in summary
    assert len(FITS) == 1 + 4 + 4
    fits = len(FITS)
    # run again: every trial is loaded from the study's storage and cache, nothing trains
    assert main([str(config), "--output", str(out), "--quiet"]) == 0
    assert len(FITS) == fits
    assert pd.read_csv(out / "results.csv")[["name", "nll"]].equals(table[["name", "nll"]])


def test_a_shift_study_scores_every_model_at_every_severity(tmp_path):
    shifted = (
        TINY + "shift: {corruptions: [noise, occlusion], severities: [1, 3, 5], layout: image}\n"
    )
    out = tmp_path / "out"
    assert main([str(write(tmp_path, shifted)), "--output", str(out), "--quiet"]) == 0
    shift = pd.read_csv(out / "shift.csv")
    models = ["mean member", "ensemble", "calibrated ensemble", "student"]
    assert list(dict.fromkeys(shift["model"])) == models
    assert len(shift) == 2 * 4 * len(models)  # 2 corruptions x (clean + 3 severities)
    clean = shift[shift.severity == 0].set_index(["corruption", "model"])["nll"]
    results = pd.read_csv(out / "results.csv").set_index("name")
    # severity 0 is the clean test set: the study's own numbers
    assert clean[("noise", "student")] == pytest.approx(results.loc["student (weighted)", "nll"])
    # the study's own ensembles are calibrated (calibration: temperature)
    assert clean[("noise", "calibrated ensemble")] == pytest.approx(results.loc["mean[3]", "nll"])
    assert clean[("noise", "ensemble")] != pytest.approx(results.loc["mean[3]", "nll"])
    noise = shift[(shift.corruption == "noise") & (shift.model == "ensemble")]
    assert noise.sort_values("severity")["accuracy"].iloc[-1] < noise["accuracy"].iloc[0]
    assert "shift.png" in {p.name for p in (out / "plots").iterdir()}
    summary = (out / "summary.md").read_text()
    assert "## Test nll under dataset shift" in summary


COMPARE = """
data: {source: digits, test_size: 0.3, validation_size: 0, ood_classes: [8, 9]}
members:
  - name: mlp
    estimator:
      class_path: members.NeuralClassifier
      init_args: {max_epochs: 3, module_kwargs: {hidden: [16]}}
    seeds: [0, 1, 2, 3]
  - name: packed
    estimator:
      class_path: ensembles.PackedEnsembleClassifier
      init_args:
        estimator:
          class_path: members.NeuralClassifier
          init_args: {max_epochs: 3, module_kwargs: {hidden: [16]}}
    seeds: [0, 1]
sizes: [1]
draws: 1
shift: {corruptions: [noise], severities: [2], layout: image}
compare:
  baseline: single
  systems:
    - {name: single, member: mlp}
    - {name: "deep (2)", member: mlp, size: 2}
    - {name: packed, member: packed}
"""


def test_a_comparison_study_tables_whole_systems_as_ratios_to_the_baseline(tmp_path):
    out = tmp_path / "out"
    assert main([str(write(tmp_path, COMPARE)), "--output", str(out), "--quiet"]) == 0
    table = pd.read_csv(out / "systems.csv", index_col=0)
    runs = pd.read_csv(out / "systems_runs.csv")
    assert list(table.index) == ["single", "deep (2)", "packed"]
    assert table["runs"].tolist() == [4, 2, 2]
    assert table["members"].tolist() == [1, 2, 4]  # a packed run fuses its 4 sub-networks
    assert (
        table.loc["single", ["parameters_x", "train_x", "predict_x", "nll_x"]].tolist() == [1.0] * 4
    )
    assert table.loc["deep (2)", "parameters_x"] == pytest.approx(2.0)
    # a deep run's training time is its two members' fit seconds
    results = pd.read_csv(out / "results.csv").set_index("name")
    first = runs[(runs.system == "deep (2)") & (runs.run == 0)].iloc[0]
    assert first["train_s"] == pytest.approx(results.loc[["mlp_s0", "mlp_s1"], "fit_s"].sum())
    # one network has no mutual information: chance; an ensemble's members disagree, so its
    # score ranks the rows (which way, for 3-epoch networks, is noise)
    assert table.loc["single", "ood_auroc_mi"] == 0.5
    assert table.loc["deep (2)", "ood_auroc_mi"] != 0.5
    assert 0.0 <= table.loc["packed", "ood_auroc_mi"] <= 1.0
    assert {"shift_accuracy", "shift_nll"} <= set(table.columns)
    # the held-out classes are out of the training data and the test rows
    assert read_config(write(tmp_path, COMPARE)).data.ood_classes == [8, 9]
    assert "## Systems (ratios to single" in (out / "summary.md").read_text()
    assert "systems.png" in {p.name for p in (out / "plots").iterdir()}


SOUP = """
data: {source: digits, test_size: 0.3, validation_size: 0.25}
members:
  - name: parent
    estimator:
      class_path: members.NeuralClassifier
      init_args: {max_epochs: 4, module_kwargs: {hidden: [32]}}
  - name: tune
    estimator:
      class_path: members.NeuralClassifier
      init_args: {max_epochs: 1, lr: 1.0e-3, module_kwargs: {hidden: [32]}}
    seeds: [1, 2, 3]
    fine_tune: parent
  - name: other
    estimator:
      class_path: members.NeuralClassifier
      init_args: {max_epochs: 4, module_kwargs: {hidden: [32]}}
    seeds: [5, 6]
sizes: [1]
draws: 1
distill:
  student:
    class_path: members.NeuralClassifier
    init_args: {max_epochs: 1, module_kwargs: {hidden: [16]}}
  members: [tune]
shift: {corruptions: [noise], severities: [2], layout: image}
soup: {members: [tune], independent: other, steps: 3}
"""


def test_a_soup_study_fine_tunes_one_network_and_tables_soups_against_outputs(tmp_path):
    out = tmp_path / "out"
    assert main([str(write(tmp_path, SOUP)), "--output", str(out), "--quiet"]) == 0
    table = pd.read_csv(out / "soup.csv", index_col=0)
    assert [name.split(" (")[0] for name in table.index] == [
        "best ingredient",
        "output ensemble",
        "greedy soup",
        "uniform soup",
        "naive average of 2 independent",
        "weight-matched average of 2 independent",
        "activation-matched average of 2 independent",
        "student",
    ]
    assert table.loc["uniform soup", "ingredients"] == 3
    assert 1 <= table.loc["greedy soup", "ingredients"] <= 3
    assert table["shift_nll"].notna().all()
    # the soups' extra time is a share of the pool's: the 3 fine-tunes and their parent
    results = pd.read_csv(out / "results.csv").set_index("name")
    pool = results.loc[["parent", "tune_s1", "tune_s2", "tune_s3"], "fit_s"].sum()
    soup_row = table.loc["greedy soup"]
    assert soup_row["extra_x"] == pytest.approx(soup_row["extra_train_s"] / pool, rel=1e-3)
    curve = pd.read_csv(out / "soup_curve.csv")
    assert list(dict.fromkeys(curve["path"])) == ["naive", "weight-matched", "activation-matched"]
    assert len(curve) == 9
    assert "interpolation.png" in {p.name for p in (out / "plots").iterdir()}
    assert "## Weight-space fusion" in (out / "summary.md").read_text()
    # a second run reuses every member: the fine-tunes' cache keys hold their parent's weights
    assert main([str(write(tmp_path, SOUP)), "--output", str(out), "--quiet"]) == 0
    assert "6 of 6 members reused" in (out / "summary.md").read_text()


BAD = [
    # (id, edit of the tiny config, words the message must hold)
    (
        "fine-tune-unknown",
        lambda c: c.replace(
            "    seeds: [0, 1]\n", "    seeds: [0, 1]\n    fine_tune: nothing\n", 1
        ),
        ["members[mlp].fine_tune='nothing'", "earlier entry"],
    ),
    (
        "fine-tune-seeds",
        lambda c: c.replace(
            "max_iter: 300}\n",
            "max_iter: 300}\n  - {name: t, estimator: members.NeuralClassifier, fine_tune: mlp}\n",
            1,
        ),
        ["fine_tune='mlp'", "one seed"],
    ),
    (
        "soup-unknown",
        lambda c: c + "soup: {members: [nothing]}\n",
        ["soup: 'nothing' is not one of the members"],
    ),
    (
        "soup-not-a-network",
        lambda c: c + "soup: {members: [lr]}\n",
        ["members[lr] must be network estimators"],
    ),
    (
        "soup-independent",
        lambda c: c + "soup: {members: [mlp], independent: lr}\n",
        ["members[lr] must be network estimators"],
    ),
    (
        "distill-members",
        lambda c: c.replace("  combiner: weighted", "  combiner: weighted\n  members: [cnn]", 1),
        ["distill.members names ['cnn']"],
    ),
    ("unknown-key", lambda c: c + "bogus_key_xyz: 1\n", ["bogus_key_xyz"]),
    ("unknown-data-key", lambda c: c.replace("test_size", "test_sise"), ["test_sise"]),
    ("wrong-type", lambda c: c.replace("max_epochs: 2,", "max_epochs: two,", 1), ["max_epochs"]),
    (
        "unknown-init-arg",
        lambda c: c.replace("max_iter: 300", "max_iterations: 300"),
        ["max_iterations"],
    ),
    (
        "unknown-combiner",
        lambda c: c.replace("combiners.MeanCombiner", "combiners.MedianCombiner"),
        ["MedianCombiner"],
    ),
    (
        "unknown-backbone",
        lambda c: c.replace("{max_epochs: 2,", "{module: transformer, max_epochs: 2,", 1),
        ["transformer", "mlp"],
    ),
    (
        "missing-file",
        lambda c: c.replace("source: digits", "source: nowhere/data.csv"),
        ["nowhere/data.csv", "no such file"],
    ),
    ("unknown-source", lambda c: c.replace("source: digits", "source: cifar"), ["cifar"]),
    ("sizes", lambda c: c + "sizes: [1, 9]\n", ["sizes", "1..3"]),
    ("subsets", lambda c: c + "subsets: best\n", ["subsets", "best"]),
    (
        "distill-combiner",
        lambda c: c.replace("combiner: weighted", "combiner: stacking"),
        ["distill.combiner", "stacking"],
    ),
    (
        "distill-options",
        lambda c: c.replace(
            "combiner: weighted\n", "combiner: weighted\n  method: cached\n  budget: 2\n"
        ),
        ["distill: budget apply to method='function_matching' only"],
    ),
    (
        "distill-temperature",
        lambda c: c.replace("combiner: weighted\n", "combiner: weighted\n  temperature: -1\n"),
        ["distill:", "'temperature' parameter", "Got -1"],
    ),
    (
        "task",
        lambda c: c.replace("source: digits", "source: diabetes"),
        ["regression", "not a regressor"],
    ),
    ("not-yaml-mapping", lambda c: "- just\n- a list\n", []),
    ("search-space", lambda c: c + "search: {space: deep}\n", ["search.space", "not a preset"]),
    ("search-trials", lambda c: c + "search: {n_trials: 0}\n", ["search.n_trials", ">= 1"]),
    (
        "search-range",
        lambda c: c + "search: {space: {C: {low: 1.0}}}\n",
        ["search.space", "low, high"],
    ),
    (
        "search-task",
        lambda c: c + "search: {estimator: sklearn.linear_model.Ridge}\n",
        ["search.estimator", "not a classifier"],
    ),
    (
        "shift-corruption",
        lambda c: c + "shift: {corruptions: [blur]}\n",
        ["shift.corruptions", "blur", "occlusion"],
    ),
    ("shift-severity", lambda c: c + "shift: {severities: [0, 6]}\n", ["shift.severities", "1..5"]),
    ("shift-layout", lambda c: c + "shift: {layout: video}\n", ["shift.layout", "video"]),
    (
        "shift-generator",
        lambda c: c + "shift: {corruptions: [mnist1d]}\n",
        ["data.source: mnist1d"],
    ),
    (
        "shift-combiner",
        lambda c: c + "shift: {combiner: stacking}\n",
        ["shift.combiner", "stacking"],
    ),
    (
        "compare-member",
        lambda c: c + "compare: {systems: [{name: a, member: cnn}], baseline: a}\n",
        ["compare.systems[a].member='cnn'", "mlp"],
    ),
    (
        "compare-size",
        lambda c: c + "compare: {systems: [{name: a, member: mlp, size: 3}], baseline: a}\n",
        ["compare.systems[a].size=3", "2 seeds"],
    ),
    (
        "compare-baseline",
        lambda c: c + "compare: {systems: [{name: a, member: mlp}], baseline: single}\n",
        ["compare.baseline='single'"],
    ),
    (
        "compare-task",
        lambda c: (
            c.replace("source: digits", "source: diabetes")
            + "compare: {systems: [{name: a, member: lr}], baseline: a}\n"
        ),
        ["compare scores classifiers", "regression"],
    ),
    (
        "ood-classes",
        lambda c: c.replace("test_size: 0.3}", "test_size: 0.3, ood_classes: [42]}"),
        ["data.ood_classes [42]"],
    ),
]


@pytest.mark.parametrize(("edit", "words"), [case[1:] for case in BAD], ids=[c[0] for c in BAD])
def test_bad_configs_exit_with_one_clear_message(tmp_path, capsys, edit, words):
    config = write(tmp_path, edit(TINY))
    assert main([str(config), "--output", str(tmp_path / "out"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("ensembles-study: error:") and "Traceback" not in error
    for word in words:
        assert word in error
    # every config problem is found before anything trains or is written
    assert not (tmp_path / "out" / "cache").exists()
    assert not (tmp_path / "out" / "results.csv").exists()


def test_missing_config_and_console_entry_point(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "experiments.study", str(tmp_path / "none.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_packaged_configs_run_by_name_from_any_folder(tmp_path, monkeypatch):
    from experiments.study import packaged_configs
    from experiments.study.config import find_config

    monkeypatch.chdir(tmp_path)  # no experiments/configs/ here
    names = packaged_configs()
    assert {"mnist1d", "digits_cnn2d", "diabetes_regression", "snapshot_vs_deep"} <= set(names)
    assert "member_cnn1d" not in names  # a LightningCLI config, not a study
    for name in names:
        config = read_config(name)
        assert config.members and find_config(name).name == f"{name}.yaml"
    assert read_config("mnist1d.yaml").data.source == "mnist1d"


def test_a_config_name_that_is_neither_file_nor_packaged(tmp_path, capsys):
    assert main(["mnist2d", "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "'mnist2d' does not exist" in error and "mnist1d" in error  # lists the packaged ones
    assert main([str(tmp_path), "--output", str(tmp_path / "out")]) == 2
    assert "is a directory; expected a YAML file" in capsys.readouterr().err


def test_a_study_with_n_jobs_gives_the_same_metrics(tmp_path, capsys):
    """Issue 16: members trained by two workers; every metric as with one, the pool's
    wall-clock time in the summary. (MLP and scikit-learn members whose training does not
    depend on the number of threads: a worker has one. Not lbfgs, the logistic regression's
    default: with scikit-learn 1.9 its iterates depend on the BLAS/OpenMP threads, and on these
    rows the probabilities of 1 and 2 threads differ by up to 0.09; Newton-Cholesky's by 1e-14.)"""
    config = write(
        tmp_path,
        TINY.replace(
            "tests.experiments.test_study.Recorded", "sklearn.linear_model.LogisticRegression"
        ).replace("{C: 0.5, max_iter: 300}", "{C: 0.5, max_iter: 300, solver: newton-cholesky}"),
    )
    assert main([str(config), "--output", str(tmp_path / "one"), "--quiet"]) == 0
    assert main([str(config), "--output", str(tmp_path / "two"), "--quiet", "--n-jobs", "2"]) == 0
    one = pd.read_csv(tmp_path / "one" / "results.csv")
    two = pd.read_csv(tmp_path / "two" / "results.csv")
    timing = ["fit_s", "predict_s"]
    pd.testing.assert_frame_equal(one.drop(columns=timing), two.drop(columns=timing))
    summary = (tmp_path / "two" / "summary.md").read_text()
    assert "wall-clock with n_jobs=2 (0 of 3 members reused from the cache)" in summary
    assert main([str(config), "--output", str(tmp_path / "bad"), "--n-jobs", "0"]) == 2
    assert (
        "n_jobs must be a positive int, -1 (every core) or null; got 0" in capsys.readouterr().err
    )
