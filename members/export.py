"""Deploy a fitted network: one ONNX graph (or ``torch.export`` program) from raw features to
what ``predict`` returns.

:func:`to_onnx` writes a fitted :class:`~members.NeuralClassifier` /
:class:`~members.NeuralRegressor` (any backbone, a user's own ``nn.Module``, a Gaussian
regressor's two heads, a distilled student) as one ONNX model: the input scaling, the network
and the output head of the task (softmax; the target scaling; the standard deviation), so that
``onnxruntime.InferenceSession(path).run(None, {"X": rows})`` on raw float32 features returns
what ``predict_proba`` / ``predict`` return, up to float32 rounding, for any number of rows.
It uses torch's own exporter (``torch.onnx.export``, the dynamo path, through ``onnxscript``).

The graph computes in float32 (ONNX Runtime has no float64 convolutions); the estimator predicts
in float64, so probabilities differ by about 1e-7 and regression outputs by float32's relative
precision in the targets' units. The file is written to a temporary sibling and renamed, so a
crash never leaves a half-written model, and an existing file is replaced only with
``overwrite=True``. ``quantize="int8"`` runs ONNX Runtime's quantiser on the graph
(:func:`write_onnx`). :func:`ensembles.to_onnx` builds a whole ensemble's graph from these
parts.
"""

from __future__ import annotations

import copy
import inspect
import io
import json
import os
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from members.data import validate_inputs
from members.mc_dropout import MCDropoutNetworks
from members.persistence import is_quantised
from members.trainer import quiet_logs

#: The graph's input and outputs, by name.
INPUT = "X"
OUTPUTS = {"classification": ["proba"], "regression": ["prediction"]}
#: The operators int8 quantisation turns to int8: the weighted layers. The rest (softmax, the
#: scalings, a combiner) stays float32, so probabilities are not rounded to steps of 1/256.
INT8_OPS = ["Conv", "MatMul", "Gemm"]
#: Rows of ``X`` that calibrate static int8 quantisation.
CALIBRATION_ROWS = 2000


class ServingNetwork(nn.Module):
    """A fitted neural estimator's prediction as one module: raw rows to its outputs.

    An MC-Dropout network's masks, which it draws from its seed at prediction, are drawn once
    here and held as constants (``MCDropoutNetworks.with_fixed_masks``),
    so that torch's exporters can take it.

    Parameters
    ----------
    estimator : NeuralClassifier or NeuralRegressor
        Fitted.
    return_std : bool, default=False
        A Gaussian regressor: also return the predicted standard deviation.
    split : bool, default=False
        An ensemble inside one network (``estimator.sub_networks > 1``): return each
        sub-network's prediction, ``(sub_networks, n_samples, n_outputs)``, as
        ``sub_network_outputs`` does, instead of their mixture (``predict_proba`` /
        ``predict``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from members import NeuralClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NeuralClassifier(max_epochs=5, random_state=0).fit(X, y)
    >>> proba = ServingNetwork(clf)(torch.as_tensor(X[:3], dtype=torch.float32))
    >>> bool(np.allclose(proba.detach().numpy(), clf.predict_proba(X[:3]), atol=1e-5))
    True
    """

    x_mean: torch.Tensor
    x_scale: torch.Tensor

    def __init__(self, estimator: Any, *, return_std: bool = False, split: bool = False) -> None:
        super().__init__()
        check_is_fitted(estimator, "model_")
        scaling = estimator.input_scaling()
        self.scaled = scaling is not None
        if scaling is not None:
            self.register_buffer("x_mean", torch.as_tensor(scaling[0], dtype=torch.float32))
            self.register_buffer("x_scale", torch.as_tensor(scaling[1], dtype=torch.float32))
        model = estimator.model_
        if isinstance(model, MCDropoutNetworks):  # a copy with its masks drawn once, as constants
            dtype = next(model.parameters()).dtype
            network = model.with_fixed_masks(torch.zeros(1, estimator.n_features_in_, dtype=dtype))
        else:
            network = copy.deepcopy(model)
        self.network = network.float().eval()
        self.head = estimator.task.head(estimator, return_std=return_std).float()
        self.mix = estimator.task.mix
        self.split = split

    def forward(self, x: torch.Tensor) -> Any:
        """The estimator's prediction on raw rows.

        Parameters
        ----------
        x : Tensor of shape (n_samples, n_features)
            Raw features, float32.

        Returns
        -------
        Tensor, or a tuple of two Tensors
            Class probabilities, predictions, or predictions and standard deviations; with
            ``split``, one per sub-network, ``(sub_networks, n_samples, n_outputs)``.
        """
        if self.scaled:
            x = (x - self.x_mean) / self.x_scale
        output = self.network(x)
        if not self.split:
            if output.dim() == 3:  # an ensemble inside one network predicts as its mixture
                output = self.mix(output)
            return self.head(output)
        members = output if output.dim() == 3 else output.unsqueeze(0)
        k, batch = members.shape[:2]
        decoded = self.head(members.reshape(k * batch, -1))  # the head reads (rows, columns)
        if isinstance(decoded, tuple):
            return tuple(part.reshape(k, batch, -1) for part in decoded)
        return decoded.reshape(k, batch, -1)


def to_onnx(
    estimator: Any,
    path: str | os.PathLike[str],
    *,
    return_std: bool = False,
    quantize: str | None = None,
    X: Any = None,
    overwrite: bool = False,
) -> Path:
    """Write a fitted neural estimator as one ONNX model.

    Parameters
    ----------
    estimator : NeuralClassifier or NeuralRegressor
        Fitted; a student from ``distill`` is one.
    path : str or path
        The file to write (its folder must exist).
    return_std : bool, default=False
        A Gaussian regressor (``loss="gaussian"``): the graph also outputs ``"std"``.
    quantize : {None, "int8"}, default=None
        ``"int8"``: ONNX Runtime's quantiser turns the weights of the convolutions and matrix
        products into int8. With ``X``: static quantisation (activations too, their ranges
        calibrated on up to 2000 rows of ``X``; per-channel weights, QOperator format), the
        fast path. Without ``X``: dynamic quantisation (weights only; activations quantised
        per call), which needs no data but ran slower than float32 on convolutions. See
        :doc:`/guide/deploy` for the measured sizes, speeds and accuracies.
    X : array-like of shape (n_samples, n_features), optional
        Raw training rows that calibrate ``quantize="int8"``.
    overwrite : bool, default=False
        Replace an existing file at ``path``; without it, an existing file is refused.

    Returns
    -------
    Path
        ``path``. The model has one input, ``"X"`` (float32, ``(batch, n_features)``, any
        batch size), and the outputs ``"proba"`` (a classifier; its metadata ``classes``
        names the columns) or ``"prediction"`` (and ``"std"``) (a regressor).

    Raises
    ------
    NotFittedError
        ``estimator`` is not fitted.
    TypeError
        ``estimator`` is not a neural estimator of this library.
    ValueError
        ``return_std`` for a network without a variance head, a compressed (int8) network,
        ``quantize`` other than ``None`` / ``"int8"``, or ``X`` without ``quantize`` or with
        other features than the fit's.
    FileExistsError, FileNotFoundError
        ``path`` exists (without ``overwrite``), or its folder does not.
    ImportError
        The ``deploy`` extra (``onnx``, ``onnxscript``, ``onnxruntime``) is not installed.

    Examples
    --------
    >>> import tempfile, onnxruntime
    >>> from sklearn.datasets import load_iris
    >>> from members import NeuralClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NeuralClassifier(max_epochs=5, random_state=0).fit(X, y)
    >>> path = to_onnx(clf, tempfile.mkdtemp() + "/iris.onnx")
    >>> session = onnxruntime.InferenceSession(path)
    >>> session.run(None, {"X": X[:2].astype("float32")})[0].shape
    (2, 3)
    """
    target = _check_export(estimator, path, return_std=return_std, overwrite=overwrite)
    assert target is not None  # a path is required here
    calibration = check_quantize(quantize, X, estimator)
    model = onnx_model(estimator, return_std=return_std)
    write_onnx(model, target, quantize=quantize, calibration=calibration)
    return target


def onnx_model(estimator: Any, *, return_std: bool = False, split: bool = False) -> Any:
    """The ONNX model :func:`to_onnx` writes, in memory.

    Parameters
    ----------
    estimator : NeuralClassifier or NeuralRegressor
        Fitted, not compressed.
    return_std : bool, default=False
        A Gaussian regressor: also output ``"std"``.
    split : bool, default=False
        An ensemble inside one network: output each sub-network's prediction (see
        :class:`ServingNetwork`); an ensemble's graph (:func:`ensembles.to_onnx`) fuses them.

    Returns
    -------
    onnx.ModelProto
        Input ``"X"``; outputs ``"proba"``, or ``"prediction"`` (and ``"std"``), each
        ``(batch, ...)``, or ``(sub_networks, batch, n_outputs)`` with ``split``; the metadata
        names the estimator (and a classifier's ``classes``).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from members import NeuralClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NeuralClassifier(max_epochs=2, random_state=0).fit(X, y)
    >>> [output.name for output in onnx_model(clf).graph.output]
    ['proba']
    """
    _check_export(estimator, None, return_std=return_std, overwrite=False)
    onnx = _import_onnx()
    module = ServingNetwork(estimator, return_std=return_std, split=split)
    outputs = OUTPUTS[estimator.task.name.split("_")[0]] + (["std"] if return_std else [])
    example = torch.zeros(2, estimator.n_features_in_)
    # the exporter's informational lines (its optional torchvision operators, which this
    # library never uses) and its own deprecation notes
    with warnings.catch_warnings(), quiet_logs("torch.onnx", "onnxscript"):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            input_names=[INPUT],
            output_names=outputs,
            dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
            verbose=False,
        )
    assert program is not None  # dynamo=True always returns the program
    model = program.model_proto
    metadata = {"producer": "torch-fusion-ensembles", "estimator": type(estimator).__name__}
    if hasattr(estimator, "classes_"):
        metadata["classes"] = json.dumps(estimator.classes_.tolist())
    onnx.helper.set_model_props(model, metadata)
    return model


def check_quantize(quantize: Any, X: Any, estimator: Any) -> np.ndarray | None:
    """Check ``quantize`` and ``X`` of an export; return the calibration rows (float32, at
    most :data:`CALIBRATION_ROWS`, validated against ``estimator``'s fit) or ``None``.

    Parameters
    ----------
    quantize : {None, "int8"}
        The export's ``quantize``.
    X : array-like or None
        The export's calibration rows.
    estimator : fitted estimator
        What ``X`` is validated against (its ``n_features_in_``).

    Returns
    -------
    ndarray of shape (n_rows, n_features) or None
        The rows, float32; ``None`` without ``X``.

    Raises
    ------
    ValueError
        ``quantize`` is not ``None`` or ``"int8"``, ``X`` is given without ``quantize``, or
        ``X`` is not numeric rows of the fit's features.

    Examples
    --------
    >>> check_quantize(None, None, object()) is None
    True
    """
    if quantize not in (None, "int8"):
        raise ValueError(f"quantize must be None or 'int8'; got {quantize!r}")
    if X is None:
        return None
    if quantize is None:
        raise ValueError("X calibrates quantize='int8'; pass quantize='int8' or leave X out")
    rows = validate_inputs(estimator, X, float32=True, reset=False)
    return np.asarray(rows[:CALIBRATION_ROWS], dtype=np.float32)


def write_onnx(
    model: Any, target: Path, *, quantize: str | None = None, calibration: np.ndarray | None = None
) -> None:
    """Write ``model`` to ``target`` atomically, quantised to int8 first when asked.

    Parameters
    ----------
    model : onnx.ModelProto
        The float model; its one input is ``"X"``.
    target : Path
        The file (checked by the caller).
    quantize : {None, "int8"}, default=None
        ONNX Runtime's quantiser: static with ``calibration``, dynamic without.
    calibration : ndarray of shape (n_rows, n_features), optional
        float32 rows that calibrate static quantisation.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sklearn.datasets import load_iris
    >>> from members import NeuralClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NeuralClassifier(max_epochs=2, random_state=0).fit(X, y)
    >>> target = Path(tempfile.mkdtemp()) / "iris.onnx"
    >>> write_onnx(onnx_model(clf), target)
    >>> target.stat().st_size > 0
    True
    """
    if quantize is None:
        write_atomically(target, model.SerializeToString())
        return
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            QuantFormat,
            QuantType,
            quantize_dynamic,
            quantize_static,
        )
    except ImportError as error:
        raise ImportError(
            "quantize='int8' needs onnxruntime: pip install 'torch-fusion-ensembles[deploy]'"
        ) from error

    class Rows(CalibrationDataReader):  # type: ignore[misc]
        """The calibration rows in batches of 100."""

        def __init__(self, rows: np.ndarray) -> None:
            self.batches = iter([{INPUT: rows[i : i + 100]} for i in range(0, len(rows), 100)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as folder, quiet_logs(""):
        # the quantiser logs its advice to pre-process the model on every call (root logger)
        quantized = Path(folder) / "int8.onnx"
        if calibration is None:
            quantize_dynamic(
                model, quantized, op_types_to_quantize=INT8_OPS, weight_type=QuantType.QInt8
            )
        else:
            quantize_static(
                model,
                quantized,
                Rows(calibration),
                op_types_to_quantize=INT8_OPS,
                quant_format=QuantFormat.QOperator,
                per_channel=True,
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8,
            )
        write_atomically(target, quantized.read_bytes())


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError as error:
        raise ImportError(
            "to_onnx needs onnx and onnxscript: pip install 'torch-fusion-ensembles[deploy]'"
        ) from error
    return onnx


def to_torch(
    estimator: Any,
    path: str | os.PathLike[str] | None = None,
    *,
    return_std: bool = False,
    overwrite: bool = False,
) -> torch.export.ExportedProgram:
    """The fitted network's prediction as a ``torch.export`` program, saved when ``path`` is given.

    The program is the graph :func:`to_onnx` writes (input scaling, network, output head), in
    float32, with a dynamic batch dimension; ``torch.export.load(path).module()(X)`` runs it
    with torch alone (this library need not be installed).

    Parameters
    ----------
    estimator : NeuralClassifier or NeuralRegressor
        Fitted.
    path : str or path, optional
        Where to save the program (``torch.export.save``); its folder must exist.
    return_std : bool, default=False
        A Gaussian regressor: the program also returns the standard deviation.
    overwrite : bool, default=False
        Replace an existing file at ``path``.

    Returns
    -------
    torch.export.ExportedProgram
        The program; ``program.module()`` is a callable ``nn.Module``.

    Raises
    ------
    NotFittedError, TypeError, ValueError, FileExistsError, FileNotFoundError
        As :func:`to_onnx`.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from members import NeuralClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NeuralClassifier(max_epochs=5, random_state=0).fit(X, y)
    >>> program = to_torch(clf)
    >>> program.module()(torch.as_tensor(X[:2], dtype=torch.float32)).shape
    torch.Size([2, 3])
    """
    target = _check_export(estimator, path, return_std=return_std, overwrite=overwrite)
    module = ServingNetwork(estimator, return_std=return_std)
    return export_program(module, estimator.n_features_in_, target)


def export_program(
    module: nn.Module, n_features: int, target: Path | None
) -> torch.export.ExportedProgram:
    """``module`` (raw rows ``(batch, n_features)`` to its outputs) as a ``torch.export``
    program with a dynamic batch dimension, saved atomically to ``target`` when given.

    Parameters
    ----------
    module : nn.Module
        Takes one float32 tensor of raw rows.
    n_features : int
        The rows' width.
    target : Path or None
        Where to save the program (checked by the caller).

    Returns
    -------
    torch.export.ExportedProgram
        The program.

    Examples
    --------
    >>> program = export_program(nn.Linear(3, 2), 3, None)
    >>> program.module()(torch.zeros(5, 3)).shape
    torch.Size([5, 2])
    """
    example = torch.zeros(2, n_features)
    # DYNAMIC, not a named Dim: the batch stays symbolic where the tracer cannot prove a guard
    # that holds for every batch size (a BatchEnsemble's per-member reshapes), instead of an
    # error; the tests run every program at batch sizes 1 and more
    batch = torch.export.Dim.DYNAMIC
    (argument,) = inspect.signature(module.forward).parameters
    program = torch.export.export(module.eval(), (example,), dynamic_shapes={argument: {0: batch}})
    if target is not None:
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
        write_atomically(target, buffer.getvalue())
    return program


def _check_export(
    estimator: Any, path: str | os.PathLike[str] | None, *, return_std: bool, overwrite: bool
) -> Path | None:
    """Every problem of an export raised before anything is built or written."""
    if not hasattr(estimator, "network_function") or not hasattr(estimator, "task"):
        raise TypeError(
            f"estimator must be a NeuralClassifier or NeuralRegressor; got "
            f"{type(estimator).__name__}"
        )
    check_is_fitted(estimator, "model_")
    if is_quantised(estimator.model_):
        raise ValueError(
            "estimator holds a compressed (quantised) network from members.compress, which "
            "torch's ONNX exporter cannot read; export the float network"
        )
    if return_std and not getattr(estimator, "predicts_std", False):
        raise ValueError(
            "return_std=True needs a regressor that predicts a variance "
            f"(NeuralRegressor(loss='gaussian')); got {type(estimator).__name__} with "
            f"loss={getattr(estimator, 'loss', None)!r}"
        )
    return None if path is None else check_target(path, overwrite=overwrite)


def check_target(path: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """``path`` as the file an export may write: its folder exists, it is not a folder, and
    it does not exist unless ``overwrite``.

    Parameters
    ----------
    path : str or path
        The file to write.
    overwrite : bool
        Whether an existing file may be replaced.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    FileNotFoundError, IsADirectoryError, FileExistsError
        Each naming ``path``.

    Examples
    --------
    >>> import tempfile
    >>> check_target(tempfile.mkdtemp() + "/model.onnx", overwrite=False).name
    'model.onnx'
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(
            f"path={str(target)!r}: the folder {str(target.parent)!r} does not exist"
        )
    if target.is_dir():
        raise IsADirectoryError(f"path={str(target)!r} is a folder; give a file name")
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"path={str(target)!r} exists; pass overwrite=True to replace it, or choose "
            "another path"
        )
    return target


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary sibling and a rename: ``target`` is
    the old file or the whole new one, never a part; an error names ``target``."""
    partial = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:12]}")
    try:
        partial.write_bytes(data)
        os.replace(partial, target)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise type(error)(
            error.errno,
            f"cannot write path={str(target)!r}: {error.strerror or error}; nothing was "
            f"changed there (check the free space and permissions of {str(target.parent)!r})",
        ) from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
