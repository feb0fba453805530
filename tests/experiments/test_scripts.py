"""The Lightning trainer scripts end to end: LightningCLI checkpoints, then an ensemble of them."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
EXPERIMENTS = ROOT / "experiments"

pytest.importorskip("mnist1d")


def test_train_member_checkpoints_make_an_ensemble(tmp_path):
    for seed in (0, 1):
        subprocess.run(
            [
                sys.executable,
                str(EXPERIMENTS / "train_member.py"),
                "fit",
                "--config",
                str(EXPERIMENTS / "configs" / "member_cnn1d.yaml"),
                "--trainer.max_epochs=1",
                f"--seed_everything={seed}",
                f"--trainer.default_root_dir={tmp_path}",
                f"--trainer.logger.init_args.save_dir={tmp_path}",
                "--trainer.enable_progress_bar=false",
                "--trainer.enable_model_summary=false",
            ],
            check=True,
            capture_output=True,
        )
    checkpoints = sorted(tmp_path.glob("lightning_logs/version_*/checkpoints/*.ckpt"))
    assert len(checkpoints) == 2
    from experiments.ensemble_from_checkpoints import evaluate

    table = evaluate([str(path) for path in checkpoints])
    assert list(table.index) == ["ckpt0", "ckpt1", "ensemble"]
    # one epoch is far from converged, but far above chance (10 %)
    assert (table["accuracy"] > 0.3).all()
    assert table.loc["ckpt0", "disagreement"] > 0  # different seeds, different members


def test_snapshot_comparison_scores_on_a_validation_split():
    from experiments.mnist1d_snapshot import compare, split

    table = compare(0, 1, data="digits", module="mlp", validation=True, peaks=[1.0, 2.5])
    expected = ["single", "snapshot@1", "snapshot@2.5", "fge@1", "fge@2.5", "swa"]
    assert list(table.index) == expected
    assert table.loc["single", "time_ratio"] == 1.0
    assert table["accuracy"].between(0.0, 1.0).all() and (table["nll"] > 0).all()
    # --validation scores 20 % of digits' 1437 training rows and never the test set
    X_fit, _, X_eval, _ = split("digits", validation=True)
    X_train, _, X_test, _ = split("digits", validation=False)
    assert (len(X_fit), len(X_eval)) == (1149, 288)
    rows = {row.tobytes() for row in X_train}
    assert all(row.tobytes() in rows for row in X_eval)
    assert not {row.tobytes() for row in X_test} & {row.tobytes() for row in X_eval}
