"""ONNX export of a fitted network (members.to_onnx): ONNX Runtime on raw features returns what
predict_proba / predict (and return_std) return, for every backbone, a user's network and any
batch size; the hostile cases are clear errors and never touch what the user had."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from torch import nn

from members import NeuralClassifier, NeuralRegressor, compress, to_onnx

ort = pytest.importorskip("onnxruntime")

X, y = load_digits(return_X_y=True)  # 64 features: an 8x8 image for cnn2d, a signal for cnn1d
X_train, y_train, X_test = X[:600], y[:600], X[600:]
# regression targets of unit scale: the graph computes in float32 (ONNX Runtime has no float64
# convolutions), so its differences scale with the targets' units
y_reg = (X[:, 20:28].sum(axis=1) - 40.0) / 20.0
Y_reg = np.column_stack([y_reg, -0.5 * y_reg])
SMALL = {"max_epochs": 2, "random_state": 0}
TOLERANCE = 1e-5


def my_network(n_features, n_outputs):
    """A user's own network, registered nowhere."""
    return nn.Sequential(nn.Linear(n_features, 16), nn.Tanh(), nn.Linear(16, n_outputs))


def run(path, rows):
    return ort.InferenceSession(str(path)).run(None, {"X": rows.astype(np.float32)})


@pytest.mark.parametrize("module", ["mlp", "cnn1d", "cnn2d", "resnet", my_network])
def test_a_classifier_runs_in_onnx_runtime_as_predict_proba(module, tmp_path):
    clf = NeuralClassifier(module, **SMALL).fit(X_train, y_train)
    path = to_onnx(clf, tmp_path / "clf.onnx")
    for n in (1, 7, 1000):
        [proba] = run(path, X_test[:n])
        assert proba.shape == (n, 10)
        assert np.abs(proba - clf.predict_proba(X_test[:n])).max() <= TOLERANCE


def test_class_weights_shift_the_exported_probabilities(tmp_path):
    clf = NeuralClassifier(class_weight="balanced", **SMALL).fit(X_train, y_train % 3 == 0)
    [proba] = run(to_onnx(clf, tmp_path / "clf.onnx"), X_test)
    assert np.abs(proba - clf.predict_proba(X_test)).max() <= TOLERANCE


@pytest.mark.parametrize("module", ["mlp", "cnn1d", my_network])
@pytest.mark.parametrize("targets", [y_reg, Y_reg], ids=["1-D", "2 outputs"])
def test_a_regressor_runs_in_onnx_runtime_as_predict(module, targets, tmp_path):
    reg = NeuralRegressor(module, **SMALL).fit(X_train, targets[:600])
    path = to_onnx(reg, tmp_path / "reg.onnx")
    for n in (1, 7, 1000):
        [prediction] = run(path, X_test[:n])
        expected = reg.predict(X_test[:n])
        assert prediction.shape == expected.shape
        assert np.abs(prediction - expected).max() <= TOLERANCE


def test_a_gaussian_regressor_exports_its_standard_deviation(tmp_path):
    reg = NeuralRegressor(loss="gaussian", **SMALL).fit(X_train, y_reg[:600])
    path = to_onnx(reg, tmp_path / "gauss.onnx", return_std=True)
    session = ort.InferenceSession(str(path))
    assert [output.name for output in session.get_outputs()] == ["prediction", "std"]
    for n in (1, 7, 1000):
        mean, std = run(path, X_test[:n])
        expected_mean, expected_std = reg.predict(X_test[:n], return_std=True)
        assert np.abs(mean - expected_mean).max() <= TOLERANCE
        assert np.abs(std - expected_std).max() <= TOLERANCE


def test_the_graph_says_its_input_and_names_the_classes(tmp_path):
    import onnx

    labels = np.array(["cat", "dog", "owl"])[y_train % 3]
    clf = NeuralClassifier(**SMALL).fit(X_train, labels)
    path = to_onnx(clf, tmp_path / "clf.onnx")
    session = ort.InferenceSession(str(path))
    [given] = session.get_inputs()
    assert given.name == "X" and given.shape[1] == 64 and isinstance(given.shape[0], str)
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["classes"] == '["cat", "dog", "owl"]'
    # the wrong number of features is refused by the graph's input shape, naming it
    with pytest.raises(Exception, match=r"(?i)dimension|shape"):
        session.run(None, {"X": X_test[:3, :60].astype(np.float32)})


def test_hostile_exports_are_clear_errors_and_touch_nothing(tmp_path):
    with pytest.raises(NotFittedError):
        to_onnx(NeuralClassifier(), tmp_path / "a.onnx")
    with pytest.raises(TypeError, match="must be a NeuralClassifier or NeuralRegressor"):
        to_onnx(LogisticRegression().fit(X_train, y_train), tmp_path / "a.onnx")
    clf = NeuralClassifier(**SMALL).fit(X_train, y_train)
    with pytest.raises(FileNotFoundError, match=r"the folder '.*missing' does not exist"):
        to_onnx(clf, tmp_path / "missing" / "a.onnx")
    with pytest.raises(ValueError, match="return_std=True needs a regressor"):
        to_onnx(clf, tmp_path / "a.onnx", return_std=True)
    with pytest.raises(ValueError, match="compressed"):
        to_onnx(compress(clf, quantize="int8"), tmp_path / "a.onnx")
    # an existing file is kept unless overwrite=True, and no temporary file is left
    existing = tmp_path / "model.onnx"
    existing.write_bytes(b"the user's file")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        to_onnx(clf, existing)
    assert existing.read_bytes() == b"the user's file"
    to_onnx(clf, existing, overwrite=True)
    assert np.abs(run(existing, X_test)[0] - clf.predict_proba(X_test)).max() <= TOLERANCE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


@pytest.mark.parametrize("calibrated", [False, True], ids=["dynamic", "static"])
def test_int8_export_shrinks_the_file_and_keeps_the_accuracy(calibrated, tmp_path):
    """ONNX Runtime's quantiser: convolutions and matrix products in int8, a file a third of
    float32's; the accuracy within 1.5 points of the float network's (5 epochs: a weak
    network with many near ties)."""
    clf = NeuralClassifier("cnn2d", max_epochs=5, random_state=0).fit(X_train, y_train)
    fp32 = to_onnx(clf, tmp_path / "fp32.onnx")
    int8 = to_onnx(clf, tmp_path / "int8.onnx", quantize="int8", X=X_train if calibrated else None)
    assert int8.stat().st_size <= 0.4 * fp32.stat().st_size
    [proba] = run(int8, X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert np.mean(proba.argmax(axis=1) == clf.predict(X_test)) >= 0.95
    accuracy = np.mean(proba.argmax(axis=1) == y[600:])
    assert accuracy >= clf.score(X_test, y[600:]) - 0.015
    ops = {node.op_type for node in __import__("onnx").load(int8).graph.node}
    assert ops & {"QLinearConv", "ConvInteger"}  # the convolutions are int8 too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fp32.onnx", "int8.onnx"]


def test_int8_export_arguments_are_checked(tmp_path):
    clf = NeuralClassifier(**SMALL).fit(X_train, y_train)
    with pytest.raises(ValueError, match="quantize must be None or 'int8'; got 'int4'"):
        to_onnx(clf, tmp_path / "a.onnx", quantize="int4")
    with pytest.raises(ValueError, match="X calibrates quantize='int8'"):
        to_onnx(clf, tmp_path / "a.onnx", X=X_train)
    with pytest.raises(ValueError, match="X has 3 features"):
        to_onnx(clf, tmp_path / "a.onnx", quantize="int8", X=X_train[:, :3])
    assert not list(tmp_path.iterdir())


SERVE_WITHOUT_TORCH = """
import sys

GONE = {"torch", "members", "combiners", "ensembles", "sklearn", "lightning", "skl2onnx"}


class Refuse:
    '''Make torch, this library and scikit-learn unimportable, as on a serving machine.'''

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in GONE:
            raise ImportError(f"{name} is not installed here")
        return None

sys.meta_path.insert(0, Refuse())
import numpy as np
import onnxruntime

rows = np.load(sys.argv[2])
outputs = onnxruntime.InferenceSession(sys.argv[1]).run(None, {"X": rows})
np.save(sys.argv[3], outputs[0])
assert not {"torch", "sklearn"} & set(sys.modules)
"""


def serve_without_torch(path, rows, folder):
    """The model's first output on ``rows``, computed in a subprocess where torch, this library
    and scikit-learn cannot be imported: only onnxruntime and numpy."""
    return run_script(SERVE_WITHOUT_TORCH, path, rows, folder)


def run_script(script, path, rows, folder):
    """``script`` run in a subprocess on the file ``path`` and ``rows``; its saved output."""
    import subprocess
    import sys

    np.save(folder / "rows.npy", rows.astype(np.float32))
    (folder / "script.py").write_text(script)
    result = subprocess.run(
        [sys.executable, "script.py", str(path), "rows.npy", "output.npy"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return np.load(folder / "output.npy")


def test_the_file_runs_where_neither_torch_nor_this_library_can_be_imported(tmp_path):
    clf = NeuralClassifier("cnn1d", **SMALL).fit(X_train, y_train)
    path = to_onnx(clf, tmp_path / "clf.onnx")
    proba = serve_without_torch(path, X_test, tmp_path)
    assert np.abs(proba - clf.predict_proba(X_test)).max() <= TOLERANCE


LOAD_WITHOUT_THIS_LIBRARY = """
import sys

LIBRARIES = {"members", "combiners", "ensembles"}

class Refuse:
    '''Make this library unimportable: torch alone loads the program.'''

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in LIBRARIES:
            raise ImportError(f"{name} is not installed here")
        return None

sys.meta_path.insert(0, Refuse())
import numpy as np
import torch

program = torch.export.load(sys.argv[1])
rows = torch.as_tensor(np.load(sys.argv[2]))
outputs = program.module()(rows)
first = outputs[0] if isinstance(outputs, tuple) else outputs
np.save(sys.argv[3], first.detach().numpy())
"""


def load_with_torch_alone(path, rows, folder):
    """The saved program's first output on ``rows``, loaded and run in a subprocess where this
    library cannot be imported: torch alone."""
    return run_script(LOAD_WITHOUT_THIS_LIBRARY, path, rows, folder)


@pytest.mark.parametrize("module", ["cnn2d", my_network])
def test_a_torch_export_program_loads_with_torch_alone(module, tmp_path):
    from members import to_torch

    clf = NeuralClassifier(module, **SMALL).fit(X_train, y_train)
    program = to_torch(clf, tmp_path / "clf.pt2")
    for n in (1, 7, 1000):
        rows = torch.as_tensor(X_test[:n], dtype=torch.float32)
        proba = program.module()(rows).detach().numpy()
        assert np.abs(proba - clf.predict_proba(X_test[:n])).max() <= TOLERANCE
    proba = load_with_torch_alone(tmp_path / "clf.pt2", X_test, tmp_path)
    assert np.abs(proba - clf.predict_proba(X_test)).max() <= TOLERANCE


@pytest.mark.parametrize("method", ["packed", "batchensemble", "mimo", "mc_dropout"])
def test_a_network_of_sub_networks_exports_its_mixture(method, tmp_path):
    from members import MIMO, BatchEnsemble, MCDropout, Packed, to_torch

    transform = {"packed": Packed, "batchensemble": BatchEnsemble, "mimo": MIMO}
    module = transform.get(method, MCDropout)("cnn1d")
    kwargs = {"dropout": 0.3} if method == "mc_dropout" else None  # its masks, fixed
    clf = NeuralClassifier(module, module_kwargs=kwargs, **SMALL).fit(X_train, y_train)
    path = to_onnx(clf, tmp_path / "clf.onnx")
    program = to_torch(clf)
    for n in (1, 7, 1000):
        expected = clf.predict_proba(X_test[:n])
        assert np.abs(run(path, X_test[:n])[0] - expected).max() <= TOLERANCE
        rows = torch.as_tensor(X_test[:n], dtype=torch.float32)
        assert np.abs(program.module()(rows).detach().numpy() - expected).max() <= TOLERANCE


def test_a_gaussian_regressor_program_returns_the_standard_deviation(tmp_path):
    from members import to_torch

    reg = NeuralRegressor(loss="gaussian", **SMALL).fit(X_train, y_reg[:600])
    mean, std = to_torch(reg, return_std=True).module()(
        torch.as_tensor(X_test, dtype=torch.float32)
    )
    expected_mean, expected_std = reg.predict(X_test, return_std=True)
    assert np.abs(mean.detach().numpy() - expected_mean).max() <= TOLERANCE
    assert np.abs(std.detach().numpy() - expected_std).max() <= TOLERANCE
    existing = tmp_path / "reg.pt2"
    existing.write_bytes(b"the user's file")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        to_torch(reg, existing)
    assert existing.read_bytes() == b"the user's file"
