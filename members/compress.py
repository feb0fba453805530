"""``compress``: shrink a fitted neural estimator by magnitude pruning and int8 quantisation."""

from __future__ import annotations

import copy
import pickle
import warnings
from numbers import Real
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.nn.utils import prune as torch_prune

from members._data import make_loader, to_numpy
from members.module import MemberModule
from members.neural import NeuralClassifier, NeuralRegressor, _NeuralEstimator

QUANTIZE = (None, "int8")
PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)
CALIBRATION_ROWS = 2000


def compress(
    estimator: _NeuralEstimator,
    *,
    quantize: str | None = None,
    prune: float | None = None,
    finetune_epochs: int = 0,
    X: Any = None,
    y: Any = None,
) -> _NeuralEstimator:
    """Return a compressed copy of a fitted ``NeuralClassifier`` / ``NeuralRegressor``.

    Parameters
    ----------
    estimator : fitted NeuralClassifier or NeuralRegressor
        Left unchanged.
    quantize : {None, "int8"}, default=None
        ``"int8"`` with ``X``: static int8 quantisation of convolutions and linear layers
        (``torch.ao.quantization`` FX mode, calibrated on up to 2000 rows of ``X``). Without
        ``X``: dynamic int8 quantisation of the linear layers only. Quantised networks run on
        the CPU in float32 and are pickled as TorchScript.
    prune : float in (0, 1), optional
        Share of the weights of all linear and convolution layers set to zero, smallest
        magnitude first (global unstructured pruning), then made permanent.
    finetune_epochs : int, default=0
        Epochs of training on ``(X, y)`` after pruning (pruned weights stay zero), at a tenth
        of the estimator's learning rate.
    X, y : array-like, optional
        Calibration data for ``quantize``; training data for ``finetune_epochs``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from members import NeuralClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NeuralClassifier(max_epochs=30, random_state=0).fit(X, y)
    >>> small = compress(clf, quantize="int8", prune=0.5, X=X)
    >>> small.predict(X[:3]).shape
    (3,)
    """
    if not isinstance(estimator, NeuralClassifier | NeuralRegressor):
        raise TypeError(
            "compress needs a fitted NeuralClassifier or NeuralRegressor; "
            f"got {type(estimator).__name__}"
        )
    check_is_fitted(estimator, "model_")
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize={quantize!r} is not supported; expected one of {QUANTIZE}")
    if prune is not None and not (isinstance(prune, Real) and 0.0 < prune < 1.0):
        raise ValueError(f"prune must be a share of the weights in (0, 1); got {prune!r}")
    if not (isinstance(finetune_epochs, int) and finetune_epochs >= 0):
        raise ValueError(f"finetune_epochs must be an int >= 0; got {finetune_epochs!r}")
    if finetune_epochs and (X is None or y is None or prune is None):
        raise ValueError("finetune_epochs > 0 fine-tunes after pruning: pass prune, X and y")
    inputs = None if X is None else estimator._validate_X(to_numpy(X))
    if not isinstance(estimator.model_, nn.Module) or isinstance(
        estimator.model_, torch.jit.ScriptModule
    ):
        raise ValueError("the estimator is already quantised; compress the float estimator")

    compressed = copy.deepcopy(estimator)
    network = compressed.model_.float()
    if prune is not None:
        _prune(compressed, network, prune, finetune_epochs, inputs, y)
    if quantize == "int8":
        network = _quantize(compressed, network.eval(), inputs)
        compressed.model_ = network
    else:
        compressed.model_ = network.double().eval()
    return compressed


def _prune(
    estimator: _NeuralEstimator,
    network: nn.Module,
    amount: float,
    finetune_epochs: int,
    X: np.ndarray | None,
    y: Any,
) -> None:
    parameters = [(m, "weight") for m in network.modules() if isinstance(m, PRUNABLE)]
    torch_prune.global_unstructured(
        parameters, pruning_method=torch_prune.L1Unstructured, amount=float(amount)
    )
    if finetune_epochs:
        assert X is not None
        if isinstance(estimator, NeuralClassifier):
            targets = np.searchsorted(estimator.classes_, np.asarray(to_numpy(y)))
        else:
            targets = estimator._encode_targets(np.asarray(to_numpy(y), dtype=np.float64))
        module = MemberModule(
            network.train(),
            task=estimator._task,
            optimizer=estimator.optimizer,
            lr=estimator.lr / 10,
            weight_decay=0.0,
        )
        loader = make_loader(estimator._scale(X), targets, batch_size=estimator.batch_size, seed=0)
        estimator._run_trainer(module, loader, finetune_epochs)
    for module_, name in parameters:
        torch_prune.remove(module_, name)


def _quantize(estimator: _NeuralEstimator, network: nn.Module, X: np.ndarray | None) -> nn.Module:
    with warnings.catch_warnings():
        # torch.ao.quantization warns of its own deprecation on every call
        warnings.simplefilter("ignore")
        if X is None:
            return torch.ao.quantization.quantize_dynamic(network, {nn.Linear}, dtype=torch.qint8)
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        calibration = torch.from_numpy(estimator._scale(X[:CALIBRATION_ROWS])).float()
        engine = torch.backends.quantized.engine
        prepared = prepare_fx(
            network, get_default_qconfig_mapping(engine), example_inputs=(calibration[:2],)
        )
        with torch.inference_mode():
            prepared(calibration)
        quantized = convert_fx(prepared)
        # FX graph modules do not pickle in torch 2.13; a traced TorchScript module does
        return torch.jit.trace(quantized, calibration[:2])  # type: ignore[no-any-return]


def pickled_size(estimator: Any) -> int:
    """Bytes of ``pickle.dumps(estimator)``: the size a user stores."""
    return len(pickle.dumps(estimator))
