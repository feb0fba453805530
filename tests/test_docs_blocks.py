"""The Python blocks of the README and the documentation run as written, in order, in one
namespace: the README, ``docs/getting_started.md``, then the guide's pages in the order of
``docs/guide/index.rst`` (a block that repeats an earlier one word for word runs once).

The blocks use a user's data (``X_train``, ``y_train``...) and Lightning loaders without
defining them; the test provides small ones (MNIST-1D's shape: 40 features, 10 classes) so
that the blocks themselves run unchanged. Blocks that begin with ``# on a cluster`` need a Ray
or Dask cluster and are left out here; tests/ensembles/test_parallel.py runs the same calls on
local clusters.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


CLUSTER = "# on a cluster"


# written by docs/conf.py when the site is built (from the study config's schema)
GENERATED = {"study_schema"}


def pages() -> list[Path]:
    """The README, getting started, then the guide's pages in its table of contents' order
    (a generated page only once the site has been built)."""
    index = (DOCS / "guide" / "index.rst").read_text().split(":maxdepth: 1", 1)[1]
    names = [line.strip() for line in index.splitlines() if line.strip()]
    guide = [
        DOCS / "guide" / f"{name}.md"
        for name in names
        if name not in GENERATED or (DOCS / "guide" / f"{name}.md").exists()
    ]
    return [README, DOCS / "getting_started.md", *guide, DOCS / "benchmarks.md"]


def every_block() -> list[str]:
    return [block for page in pages() for block in BLOCK.findall(page.read_text())]


def python_blocks() -> list[str]:
    blocks: list[str] = []
    for block in every_block():
        if not block.startswith(CLUSTER) and block not in blocks:
            blocks.append(block)
    return blocks


def test_the_guide_lists_every_page():
    listed = set(pages())
    on_disk = {README, *DOCS.glob("*.md"), *(DOCS / "guide").glob("*.md")}
    assert listed == on_disk


def user_data() -> dict[str, object]:
    # 100 training rows: one batch per epoch keeps the blocks' 40-100 epochs fast
    X, y = make_classification(
        n_samples=160, n_features=40, n_informative=12, n_classes=10, random_state=0
    )
    X_train, y_train, X_test, y_test = X[:100], y[:100], X[100:], y[100:]
    tensors = TensorDataset(torch.tensor(X_train, dtype=torch.float32), torch.tensor(y_train))
    loader = DataLoader(tensors, batch_size=128, shuffle=True)
    return {
        "X": X_train,
        "y": y_train,
        "X_train": X_train,
        "y_train": y_train,
        "X_test": X_test,
        "y_test": y_test,
        "train_loader": loader,
        "val_loader": DataLoader(tensors, batch_size=128),
        "loader": loader,
    }


def test_the_docs_have_the_blocks_this_test_runs():
    blocks = python_blocks()
    assert len(blocks) >= 9
    assert any("EnsembleClassifier(" in block for block in blocks)
    assert any("register_backbone" in block for block in blocks)
    # only the two cluster recipes are left out
    assert sum(block.startswith(CLUSTER) for block in every_block()) == 2


def test_docs_python_blocks_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the blocks write runs/ and models/
    namespace = user_data()
    # the snapshot block's Lightning lines train a user's own module
    from members import CNN1d, MemberModule

    namespace["module"] = MemberModule(CNN1d(40, 10), scheduler="constant")
    for index, block in enumerate(python_blocks()):
        try:
            exec(compile(block, f"docs python block {index}", "exec"), namespace)
        except Exception as error:
            pytest.fail(f"docs python block {index} failed: {error!r}\n{block}")
    # what the blocks promise
    ensemble = namespace["ensemble"]
    proba = ensemble.predict_proba(namespace["X_test"])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (tmp_path / "models" / "ens1" / "manifest.json").is_file()
    assert len(namespace["collector"].snapshots) == 5
    assert len(namespace["snap"].members_) == 5
