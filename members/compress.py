"""``compress``: shrink a fitted neural estimator by magnitude pruning and int8 quantisation."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from numbers import Integral, Real
from typing import Any

from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.nn.utils import prune as torch_prune

from members.neural import BaseNeuralEstimator, NeuralClassifier, NeuralRegressor
from members.params import Interval, StrOptions, check_params
from members.persistence import is_quantised
from members.trainer import quiet_logs, while_training
from members.training import TrainingPlan, seeded

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)


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
        ``"int8"``: torchao's weight-only int8 (``Int8WeightOnlyConfig``: one scale per
        output row) on every linear layer; the network computes in float32 on the CPU and
        pickles (the safe format refuses it). torchao has no int8 convolution, so a
        convolutional network's convolutions stay float32 and it shrinks little; to int8 the
        convolutions too, export the float network with
        ``members.to_onnx(estimator, path, quantize="int8")`` (ONNX Runtime's quantiser), the
        deployment path. Weight-only rather than torchao's dynamic int8 activations: in eager
        mode on the CPU, dynamic int8 ran 4x slower than float32 and weight-only 1.6x (the
        default ``mlp``, 2000 rows, the 2-core CI machine). The ``torch.ao.quantization``
        path this used before is deprecated by torch. Needs ``torchao`` (the ``deploy``
        extra).
    prune : float in (0, 1), optional
        Share of the weights of all linear and convolution layers set to zero, smallest
        magnitude first (global unstructured pruning), then made permanent.
    finetune_epochs : int, default=0
        Epochs of training on ``(X, y)`` after pruning (pruned weights stay zero), at a tenth
        of the estimator's learning rate.
    X : array-like of shape (n_samples, n_features), optional
        Training rows for ``finetune_epochs`` (int8 needs no calibration rows).
    y : array-like of shape (n_samples,) or (n_samples, n_outputs), optional
        Their targets, for ``finetune_epochs``.
    sample_weight : array-like of shape (n_samples,), optional
        The fine-tune's row weights, as in ``fit``.

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
    >>> small = compress(clf, quantize="int8", prune=0.5)
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
    if (X is not None or y is not None) and not finetune_epochs:
        raise ValueError(
            "X and y are the rows of the fine-tune after pruning: pass finetune_epochs > 0 "
            "(int8 quantisation needs no calibration rows)"
        )
    if is_quantised(estimator.model_):
        raise ValueError("the estimator is already quantised; compress the float estimator")

    compressed = copy.deepcopy(estimator)
    # the fine-tune plan validates X and y, and encodes y as the original fit did
    finetune = (
        compressed.plan_finetune(X, y, max_epochs=finetune_epochs, sample_weight=sample_weight)
        if finetune_epochs
        else None
    )
    network = compressed.model_.float()
    if prune is not None:
        _prune(network, prune, finetune)
    if quantize == "int8":
        compressed.model_ = quantize_int8(network.eval())
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


def quantize_int8(network: nn.Module) -> nn.Module:
    """``network`` (float32) with torchao's weight-only int8 on its linear layers, in place.

    Parameters
    ----------
    network : nn.Module
        A float32 network in eval mode.

    Returns
    -------
    nn.Module
        ``network``, its linear layers' weights int8 (``torchao.quantization.Int8Tensor``).

    Raises
    ------
    ImportError
        ``torchao`` is not installed.
    ValueError
        ``network`` has no linear layer, so nothing would be quantised.

    Examples
    --------
    >>> from torch import nn
    >>> network = quantize_int8(nn.Sequential(nn.Linear(4, 3)).eval())
    >>> type(network[0].weight).__name__
    'Int8Tensor'
    """
    if not any(isinstance(module, nn.Linear) for module in network.modules()):
        raise ValueError(
            "quantize='int8' quantises linear layers (torchao has no int8 convolution) and "
            f"this {type(network).__name__} has none; export it with "
            "members.to_onnx(estimator, path, quantize='int8') instead"
        )
    try:
        # torchao logs torch's deprecation of its Enum registration, and its optional CUDA
        # kernels, at import: neither concerns this CPU path
        with quiet_logs("torch.utils._pytree", "torchao"):
            from torchao.quantization import Int8WeightOnlyConfig, quantize_
    except ImportError as error:
        raise ImportError(
            "quantize='int8' needs torchao: pip install 'torch-fusion-ensembles[deploy]'"
        ) from error
    quantize_(network, Int8WeightOnlyConfig())
    for module in network.modules():
        # torchao sets a partial as each layer's extra_repr, which pickle cannot store; the
        # class's own extra_repr is left
        module.__dict__.pop("extra_repr", None)
    return network


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
