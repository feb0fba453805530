"""Red team: crafted files run no code on load, from_checkpoint, a refit or a study rerun.

Each payload, if it ran, would write a marker file; every test asserts the marker is absent.
The payloads are what an earlier version executed: a scikit-learn function trusted by name
prefix and called with values from the file, a TorchScript network, a ``config.yaml`` naming
any importable callable, and a replaced cache entry.
"""

import copy
import hashlib
import json
import shutil
import sys
import textwrap
import warnings

import numpy as np
import pytest
import skops.io as sio
import torch
from sklearn.utils._testing import assert_run_python_script_without_output

from ensembles import EnsembleClassifier
from experiments.study import main
from members import MLP, MemberModule, NeuralClassifier, persistence

PAYLOAD_FUNCTION = "sklearn.utils._testing.assert_run_python_script_without_output"
X = np.random.RandomState(0).normal(size=(40, 4))
y = np.tile([0, 1], 20)


def crafted_save(folder, marker):
    """A save whose ``module`` is a scikit-learn function that runs Python source, and whose
    input size is that source: rebuilding the network would call ``module(n_features_in_,
    ...)``."""
    clf = NeuralClassifier(max_epochs=1, module_kwargs={"hidden": (4,)}).fit(X, y)
    clf.module, clf.module_kwargs = assert_run_python_script_without_output, None
    clf.n_features_in_ = f"open({str(marker)!r}, 'w').write('ran')"
    persistence.save(clf, folder)
    return folder


def test_a_function_trusted_by_prefix_is_refused_and_never_called(tmp_path):
    marker = tmp_path / "marker"
    folder = crafted_save(tmp_path / "save", marker)
    with pytest.raises(ValueError, match=f"not trusted by default: \\['{PAYLOAD_FUNCTION}'\\]"):
        persistence.load(folder)
    # even when the user trusts the function, the values that would be passed to it are
    # type-checked first
    with pytest.raises(ValueError, match="saved n_features_in_ must be an int >= 1"):
        persistence.load(folder, trusted=[PAYLOAD_FUNCTION])
    assert not marker.exists()


def test_a_smuggled_torchscript_network_is_refused(tmp_path):
    clf = NeuralClassifier(max_epochs=1, module_kwargs={"hidden": (4,)}).fit(X, y)
    folder = persistence.save(clf, tmp_path / "save")
    # swap the state for one holding a TorchScript blob (save() itself refuses to write one)
    # a TorchScript network (what compress made before torchao) travels as TorchScript bytes
    quantised = copy.deepcopy(clf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        quantised.model_ = torch.jit.trace(clf.model_, torch.zeros(2, X.shape[1]).double())
    (folder / "estimator.skops").write_bytes(sio.dumps(quantised))
    with pytest.raises(ValueError, match="estimator.skops does not match the checksum"):
        persistence.load(folder)
    # an attacker who controls the folder also rewrites the checksum
    manifest = json.loads((folder / "manifest.json").read_text())
    digest = hashlib.sha256((folder / "estimator.skops").read_bytes()).hexdigest()
    manifest["files"]["estimator.skops"] = digest
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="members.network_state.ScriptBytes"):
        persistence.load(folder)
    with pytest.raises(ValueError, match="never runs TorchScript"):
        persistence.load(folder, trusted=True)


def lightning_checkpoint(tmp_path):
    """A plain Lightning checkpoint laid out as LightningCLI does: <run>/checkpoints/x.ckpt."""
    from torch.utils.data import DataLoader, TensorDataset

    from members.trainer import build_trainer

    module = MemberModule(MLP(4, 2, hidden=(8,)))
    data = DataLoader(TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y)))
    trainer = build_trainer(max_epochs=1, n_batches=len(data), accelerator="cpu")
    trainer.fit(module, data)
    run = tmp_path / "lightning_logs" / "version_0"
    (run / "checkpoints").mkdir(parents=True)
    checkpoint = run / "checkpoints" / "last.ckpt"
    trainer.save_checkpoint(checkpoint)
    return run, checkpoint


def test_a_malicious_config_beside_a_checkpoint_is_not_run(tmp_path):
    marker = tmp_path / "marker"
    run, checkpoint = lightning_checkpoint(tmp_path)
    script = f"open({str(marker)!r}, 'w').write('ran')"
    (run / "config.yaml").write_text(
        textwrap.dedent(
            f"""
            model:
              backbone:
                class_path: subprocess.run
                init_args: {{args: [{sys.executable!r}, -c, {script!r}]}}
            """
        )
    )
    with pytest.raises(ValueError, match=r"class_path='subprocess.run' is not a backbone"):
        NeuralClassifier.from_checkpoint(checkpoint)
    assert not marker.exists()
    # the library's own backbone, named the way LightningCLI writes it, is built
    (run / "config.yaml").write_text(
        "model:\n  backbone:\n    class_path: members.MLP\n"
        "    init_args: {n_features: 4, n_outputs: 2, hidden: [8]}\n"
    )
    clf = NeuralClassifier.from_checkpoint(checkpoint)
    assert clf.predict_proba(X).shape == (40, 2)


def test_a_config_further_up_is_not_read(tmp_path):
    run, checkpoint = lightning_checkpoint(tmp_path)
    (tmp_path / "config.yaml").write_text(
        "model:\n  backbone:\n    class_path: members.MLP\n"
        "    init_args: {n_features: 4, n_outputs: 2, hidden: [8]}\n"
    )
    with pytest.raises(ValueError, match="no LightningCLI config.yaml beside"):
        NeuralClassifier.from_checkpoint(checkpoint)


def test_a_replaced_checkpoint_entry_runs_no_code_and_is_retrained(tmp_path):
    marker = tmp_path / "marker"
    members = [("net", NeuralClassifier(max_epochs=1, module_kwargs={"hidden": (4,)}))]
    EnsembleClassifier(members, checkpoint_dir=tmp_path / "ckpt", random_state=0).fit(X, y)
    [entry] = [p.parent for p in (tmp_path / "ckpt").glob("*/manifest.json")]
    crafted = crafted_save(tmp_path / "crafted", marker)
    for name in ("estimator.skops", "manifest.json", "weights.safetensors"):
        shutil.copy(crafted / name, entry / name)
    with pytest.warns(UserWarning, match=f"checkpoint {entry} cannot be reused"):
        again = EnsembleClassifier(members, checkpoint_dir=tmp_path / "ckpt", random_state=0)
        again.fit(X, y)
    assert not marker.exists()
    assert again.predict_proba(X).shape == (40, 2)  # retrained, and stored again
    persistence.load(entry)


def test_a_replaced_study_cache_entry_runs_no_code(tmp_path, capsys):
    marker = tmp_path / "marker"
    config = tmp_path / "study.yaml"
    config.write_text(
        textwrap.dedent(
            """
            data: {source: iris}
            members:
              - name: net
                estimator:
                  class_path: members.NeuralClassifier
                  init_args: {max_epochs: 1, module_kwargs: {hidden: [4]}}
            """
        )
    )
    out = tmp_path / "out"
    assert main([str(config), "--output", str(out), "--quiet"]) == 0
    [entry] = [p.parent for p in (out / "cache").glob("*/manifest.json")]
    crafted = crafted_save(tmp_path / "crafted", marker)
    for name in ("estimator.skops", "manifest.json", "weights.safetensors"):
        shutil.copy(crafted / name, entry / name)
    capsys.readouterr()
    assert main([str(config), "--output", str(out), "--quiet"]) == 0
    assert not marker.exists()
    # the CLI prints each warning as one line on stderr
    assert f"ensembles-study: UserWarning: checkpoint {entry} cannot be reused" in (
        capsys.readouterr().err
    )
