"""``compress``: shrink a fitted neural estimator by magnitude pruning and int8 quantisation."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.nn.utils import prune as torch_prune

from members.neural import BaseNeuralEstimator, NeuralClassifier, NeuralRegressor
from members.params import Interval, StrOptions, check_params
from members.trainer import while_training
from members.training import TrainingPlan, seeded

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)
CALIBRATION_ROWS = 2000


def compress(
    estimator: BaseNeuralEstimator,
    *,
    quantize: str | None = None,
    prune: float | None = None,
    finetune_epochs: int = 0,
    X: Any = None,
    y: Any = None,
    sample_weight: Any = None,
) -> BaseNeuralEstimator:
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
    X : array-like of shape (n_samples, n_features), optional
        Calibration rows for ``quantize``; training rows for ``finetune_epochs``.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs), optional
        Their targets, for ``finetune_epochs``.
    sample_weight : array-like of shape (n_samples,), optional
        The fine-tune's row weights, as in ``fit`` (rows of weight 0 are left out of the
        calibration rows too).

    Returns
    -------
    NeuralClassifier or NeuralRegressor
        A compressed copy; ``estimator`` is left unchanged.

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
    check_params(
        "compress",
        {
            "quantize": [StrOptions({"int8"}), None],
            "prune": [Interval(Real, 0, 1, closed="neither"), None],
            "finetune_epochs": [Interval(Integral, 0, None, closed="left")],
        },
        quantize=quantize,
        prune=prune,
        finetune_epochs=finetune_epochs,
    )
    if finetune_epochs and (X is None or y is None or prune is None):
        raise ValueError("finetune_epochs > 0 fine-tunes after pruning: pass prune, X and y")
    if sample_weight is not None and not finetune_epochs:
        raise ValueError("sample_weight weighs the fine-tune's rows: pass finetune_epochs > 0")
    if not isinstance(estimator.model_, nn.Module) or isinstance(
        estimator.model_, torch.jit.ScriptModule
    ):
        raise ValueError("the estimator is already quantised; compress the float estimator")

    compressed = copy.deepcopy(estimator)
    # the fine-tune plan validates X and y, and encodes y as the original fit did
    finetune = (
        compressed.plan_finetune(X, y, max_epochs=finetune_epochs, sample_weight=sample_weight)
        if finetune_epochs
        else None
    )
    if X is None:
        inputs = None
    else:  # validated and scaled once, by the fine-tune plan when there is one
        inputs = finetune.inputs if finetune is not None else compressed.network_inputs(X)
    network = compressed.model_.float()
    if prune is not None:
        _prune(network, prune, finetune)
    if quantize == "int8":
        network = _quantize(network.eval(), inputs)
        compressed.model_ = network
    else:
        compressed.model_ = network.double().eval()
    return compressed


def _prune(network: nn.Module, amount: float, finetune: TrainingPlan | None) -> None:
    """Global magnitude pruning of ``network``, fine-tuned by ``finetune`` (pruned weights
    stay zero), then made permanent."""
    parameters = [(m, "weight") for m in network.modules() if isinstance(m, PRUNABLE)]
    torch_prune.global_unstructured(
        parameters, pruning_method=torch_prune.L1Unstructured, amount=float(amount)
    )
    if finetune is not None:
        # a tenth of the learning rate, no weight decay, annealed to zero
        settings = {"lr": finetune.settings["lr"] / 10, "weight_decay": 0.0, "scheduler": "cosine"}
        finetune = dataclasses.replace(finetune, settings={**finetune.settings, **settings})
        with seeded(finetune.seed), while_training("the pruned network (compress fine-tune)"):
            finetune.run(finetune.module(network.train()), finetune.loader())
    for module_, name in parameters:
        torch_prune.remove(module_, name)


def _quantize(network: nn.Module, inputs: np.ndarray | None) -> nn.Module:
    """``network`` quantised to int8: static (calibrated on ``inputs``, the scaled network
    inputs) or, without inputs, dynamic for the linear layers."""
    with warnings.catch_warnings():
        # torch.ao.quantization warns of its own deprecation on every call
        warnings.simplefilter("ignore")
        if inputs is None:
            return torch.ao.quantization.quantize_dynamic(network, {nn.Linear}, dtype=torch.qint8)
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        calibration = torch.from_numpy(inputs[:CALIBRATION_ROWS]).float()
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
    """Bytes of ``pickle.dumps(estimator)``: the size a user stores.

    Parameters
    ----------
    estimator : object
        Any picklable estimator.

    Returns
    -------
    int
        The size in bytes.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> pickled_size(LogisticRegression()) > 0
    True
    """
    return len(pickle.dumps(estimator))
