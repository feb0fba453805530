"""Deploy a fitted ensemble as one ONNX graph: every member, the combiner and the calibration.

:func:`to_onnx` writes an :class:`~ensembles.EnsembleClassifier` /
:class:`~ensembles.EnsembleRegressor` (or a snapshot ensemble, an ensemble inside one
network or a search, which wrap one) as
one ONNX model whose input is the raw rows ``"X"`` and whose output is what ``predict_proba``
/ ``predict`` return: neural members through torch's exporter (:func:`members.export.onnx_model`),
scikit-learn members through ``skl2onnx``, each laid out on the ensemble's classes, stacked
into ``(n_members, batch, n_outputs)`` and fused by the combiner and the calibration, which
are written as a small torch module (:class:`FusionHead`) and exported the same way. A fitted
neural estimator is handed to :func:`members.to_onnx`.

:func:`to_torch` gives an ensemble of networks as one ``torch.export`` program
(:class:`ServingEnsemble`: the members' serving networks and the same head).

Everything that cannot be converted (a member, the combiner, a stacking meta-learner) is
refused, naming it and why, before anything is written.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import is_classifier
from sklearn.utils.validation import check_is_fitted
from torch import nn

from combiners import (
    AutoCombiner,
    MeanCombiner,
    StackingCombiner,
    TemperatureScaling,
    VarianceScaling,
    VotingCombiner,
)
from combiners.base import BaseCombiner
from ensembles import uncertainty as uncertainty_parts
from ensembles._wrapped import WrappedEnsembleMixin
from ensembles.regressor import predicts_std
from members.export import (
    INPUT,
    ServingNetwork,
    check_quantize,
    check_target,
    export_program,
    onnx_model,
    write_onnx,
)
from members.export import to_onnx as network_to_onnx
from members.export import to_torch as network_to_torch
from members.persistence import is_quantised
from members.tasks import PriorShift
from members.trainer import quiet_logs

#: The combiners the graph can express, for the error that refuses another.
SUPPORTED_COMBINERS = (
    "a weighted mean (MeanCombiner, WeightedCombiner, EnsembleSelection, SnapshotCombiner, any "
    "rule with mixture_weights), MeanCombiner(method='geometric' | 'logit'), VotingCombiner, "
    "StackingCombiner with a linear or logistic final_estimator, and AutoCombiner (its chosen "
    "rule)"
)
#: ``log(max(p, EPS))``, as the combiners take logs of probabilities.
EPS = 1e-12


def to_onnx(
    estimator: Any,
    path: str | os.PathLike[str],
    *,
    return_std: bool = False,
    member_outputs: bool = False,
    uncertainty: bool = False,
    quantize: str | None = None,
    X: Any = None,
    overwrite: bool = False,
) -> Path:
    """Write a fitted ensemble, or a fitted network, as one ONNX model.

    Parameters
    ----------
    estimator : fitted estimator
        An ``EnsembleClassifier`` / ``EnsembleRegressor``, a snapshot ensemble, an ensemble
        inside one network (``PackedEnsembleClassifier``, ``BatchEnsembleClassifier``,
        ``MIMOClassifier``, ``MCDropoutClassifier`` and their regressors) or an ensemble search
        (their ``ensemble_``), or a ``NeuralClassifier`` / ``NeuralRegressor`` (a distilled
        student is one), which :func:`members.to_onnx` writes. Members may be any of these too:
        an ensemble inside one network gives its sub-networks or, with
        ``sub_networks="fused"``, their mixture.
    path : str or path
        The file to write (its folder must exist).
    return_std : bool, default=False
        A regressor: also output ``"std"``, the standard deviation ``predict(X,
        return_std=True)`` returns (calibrated when the ensemble is).
    member_outputs : bool, default=False
        An ensemble: also output ``"member_outputs"``, ``(n_members, batch, n_outputs)``, as
        ``member_predictions`` returns (its metadata ``members`` names them).
    uncertainty : bool, default=False
        An ensemble: also output ``"total"``, ``"aleatoric"`` and ``"epistemic"``, the
        columns of ``predict_uncertainty`` (nats for a classifier, ``(batch,)``; variances for
        a regressor, ``(batch, n_outputs)``).
    quantize : {None, "int8"}, default=None
        ONNX Runtime's int8 quantisation of the convolutions and matrix products (see
        :func:`members.to_onnx`); the combiner and the calibration stay float32.
    X : array-like of shape (n_samples, n_features), optional
        Raw training rows that calibrate ``quantize="int8"`` (static quantisation).
    overwrite : bool, default=False
        Replace an existing file at ``path``.

    Returns
    -------
    Path
        ``path``. The model's input is ``"X"`` (float32, ``(batch, n_features)``, any batch
        size); its first output is ``"proba"`` (a classifier; its metadata ``classes`` names
        the columns) or ``"prediction"`` (a regressor).

    Raises
    ------
    NotFittedError
        ``estimator`` is not fitted.
    TypeError
        ``estimator`` is neither an ensemble nor a neural estimator of this library.
    ValueError
        A member, the combiner or the meta-learner has no graph form (named, with the
        reason), ``return_std`` for a classifier, or a bad ``quantize`` / ``X``.
    FileExistsError, FileNotFoundError
        ``path`` exists (without ``overwrite``), or its folder does not.
    ImportError
        The ``deploy`` extra (``onnx``, ``onnxscript``, ``onnxruntime``, ``skl2onnx``) is not
        installed.

    Examples
    --------
    >>> import tempfile, onnxruntime
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from members import NeuralClassifier
    >>> from ensembles import EnsembleClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> members = [("net", NeuralClassifier(max_epochs=5)), ("lr", LogisticRegression())]
    >>> ensemble = EnsembleClassifier(members, random_state=0).fit(X, y)
    >>> path = to_onnx(ensemble, tempfile.mkdtemp() + "/iris.onnx")
    >>> [proba] = onnxruntime.InferenceSession(path).run(None, {"X": X[:2].astype("float32")})
    >>> bool(abs(proba - ensemble.predict_proba(X[:2])).max() < 1e-5)
    True
    """
    ensemble = ensemble_of(estimator)
    if ensemble is None:
        if member_outputs or uncertainty:
            raise ValueError(
                "member_outputs and uncertainty are outputs of an ensemble's graph; "
                f"{type(estimator).__name__} is one network"
            )
        return network_to_onnx(
            estimator, path, return_std=return_std, quantize=quantize, X=X, overwrite=overwrite
        )
    target = check_target(path, overwrite=overwrite)
    calibration = check_quantize(quantize, X, ensemble)
    model = ensemble_model(
        ensemble, return_std=return_std, member_outputs=member_outputs, uncertainty=uncertainty
    )
    write_onnx(model, target, quantize=quantize, calibration=calibration)
    return target


def ensemble_of(estimator: Any) -> Any:
    """The fitted ``EnsembleClassifier`` / ``EnsembleRegressor`` behind ``estimator``, or
    ``None`` for a neural estimator; a ``TypeError`` for anything else.

    Parameters
    ----------
    estimator : fitted estimator
        An ensemble, a wrapper of one (``ensemble_``: a snapshot ensemble, an ensemble inside
        one network, a search) or a neural estimator.

    Returns
    -------
    EnsembleClassifier, EnsembleRegressor or None
        The ensemble.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from members import NeuralClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> ensemble_of(NeuralClassifier(max_epochs=1).fit(X, y)) is None
    True
    """
    from ensembles._base import BaseEnsemble

    if hasattr(estimator, "network_function") and hasattr(estimator, "task"):
        return None
    if isinstance(estimator, WrappedEnsembleMixin):
        check_is_fitted(estimator, "ensemble_")
        estimator = estimator.ensemble_
    if not isinstance(estimator, BaseEnsemble):
        name = getattr(estimator, "__name__", type(estimator).__name__)  # a class, or not
        raise TypeError(
            "estimator must be a fitted EnsembleClassifier or EnsembleRegressor (or an "
            "estimator wrapping one: a snapshot ensemble, an ensemble inside one network, a "
            f"search), NeuralClassifier or NeuralRegressor; got {name}"
        )
    check_is_fitted(estimator, "members_")
    return estimator


def ensemble_model(
    ensemble: Any,
    *,
    return_std: bool = False,
    member_outputs: bool = False,
    uncertainty: bool = False,
) -> Any:
    """The ONNX model :func:`to_onnx` writes for a fitted ensemble, in memory.

    Parameters
    ----------
    ensemble : EnsembleClassifier or EnsembleRegressor
        Fitted.
    return_std, member_outputs, uncertainty : bool, default=False
        The extra outputs, as in :func:`to_onnx`.

    Returns
    -------
    onnx.ModelProto
        One graph from ``"X"`` to the outputs.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from ensembles import EnsembleClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> ensemble = EnsembleClassifier([("lr", LogisticRegression())], cv=None).fit(X, y)
    >>> [output.name for output in ensemble_model(ensemble).graph.output]
    ['proba']
    """
    import onnx
    from onnx import TensorProto, helper

    classification = is_classifier(ensemble)
    if return_std and classification:
        raise ValueError("return_std=True is for a regressor; a classifier outputs proba")
    needs_variance = not classification and (return_std or uncertainty)
    head = FusionHead(
        ensemble, return_std=return_std, member_outputs=member_outputs, uncertainty=uncertainty
    )
    # every member converted (or refused, by name) before the graph is put together
    graphs = [
        _member_graph(name, member, ensemble, with_std=needs_variance)
        for name, member in ensemble.named_members_.items()
    ]
    nodes: list[Any] = []
    initializers: list[Any] = []
    opsets: dict[str, int] = {}
    stacked, variances = [], []
    for index, (model, outputs, layout, count) in enumerate(graphs):
        prefix = f"m{index}/"
        model = onnx.compose.add_prefix(model, prefix)
        for opset in model.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
        nodes.append(helper.make_node("Identity", [INPUT], [f"{prefix}{INPUT}"]))
        nodes.extend(model.graph.node)
        initializers.extend(model.graph.initializer)
        mean = f"{prefix}{outputs[0]}"
        if layout is not None:
            initializers.append(onnx.numpy_helper.from_array(layout, f"{prefix}layout"))
            nodes.append(helper.make_node("MatMul", [mean, f"{prefix}layout"], [f"{prefix}laid"]))
            mean = f"{prefix}laid"
        nodes.extend(
            _stack_node(mean, f"{prefix}stacked", (count, head.n_outputs), initializers, prefix)
        )
        stacked.append(f"{prefix}stacked")
        if needs_variance:
            variance = f"{prefix}variance"
            if len(outputs) > 1:  # a standard deviation: squared
                std = f"{prefix}{outputs[1]}"
                nodes.append(helper.make_node("Mul", [std, std], [f"{prefix}var_flat"]))
            else:  # a point prediction: no variance of its own
                nodes.append(helper.make_node("Sub", [mean, mean], [f"{prefix}var_flat"]))
            nodes.extend(
                _stack_node(
                    f"{prefix}var_flat", variance, (count, head.n_outputs), initializers, prefix
                )
            )
            variances.append(variance)
    nodes.append(helper.make_node("Concat", stacked, ["member_stack"], axis=0))
    head_inputs = ["member_stack"]
    if needs_variance:
        nodes.append(helper.make_node("Concat", variances, ["member_variances"], axis=0))
        head_inputs.append("member_variances")
    if head.passthrough:
        head_inputs.append(INPUT)
    fusion = onnx.compose.add_prefix(head.to_onnx(), "fusion/")
    for opset in fusion.opset_import:
        opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
    for source, graph_input in zip(head_inputs, fusion.graph.input, strict=True):
        nodes.append(helper.make_node("Identity", [source], [graph_input.name]))
    nodes.extend(fusion.graph.node)
    initializers.extend(fusion.graph.initializer)
    graph_outputs = []
    for name, graph_output in zip(head.output_names, fusion.graph.output, strict=True):
        nodes.append(helper.make_node("Identity", [graph_output.name], [name]))
        dims = _dims(graph_output)
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
    graph = helper.make_graph(
        nodes,
        f"{type(ensemble).__name__}",
        [
            helper.make_tensor_value_info(
                INPUT, TensorProto.FLOAT, ["batch", ensemble.n_features_in_]
            )
        ],
        graph_outputs,
        initializer=initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(domain, v) for domain, v in opsets.items()]
    )
    model.ir_version = max(m.ir_version for m, _, _, _ in graphs)
    metadata = {
        "producer": "torch-fusion-ensembles",
        "estimator": type(ensemble).__name__,
        "members": json.dumps(list(ensemble.output_names_)),
        "combiner": str(type(ensemble.combiner_).__name__),
    }
    if classification:
        metadata["classes"] = json.dumps(ensemble.classes_.tolist())
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    return model


def _dims(value_info: Any) -> list[Any] | None:
    """A graph output's dimensions, symbolic ones by name."""
    return [dim.dim_param or dim.dim_value for dim in value_info.type.tensor_type.shape.dim] or None


def _stack_node(
    source: str, target: str, shape: tuple[int, int], initializers: list[Any], prefix: str
) -> list[Any]:
    """Nodes reshaping a member's output (``(batch, ...)``, or ``(count, batch, ...)`` for
    the sub-networks of one) to ``(count, batch, n_outputs)``; ``shape`` is ``(count,
    n_outputs)``."""
    from onnx import helper, numpy_helper

    name = f"{prefix}shape{len(initializers)}"
    count, n_outputs = shape
    initializers.append(numpy_helper.from_array(np.array([count, -1, n_outputs], np.int64), name))
    return [helper.make_node("Reshape", [source, name], [target])]


def _member_graph(
    name: str, member: Any, ensemble: Any, *, with_std: bool
) -> tuple[Any, list[str], np.ndarray | None, int]:
    """Member ``name`` as an ONNX model from ``"X"``: the model, its output names (the
    prediction, then a standard deviation when ``with_std`` and it has one), the float32
    matrix that lays its class columns on the ensemble's (``None`` when they match) and the
    number of outputs it gives the combiner (its sub-networks, when the ensemble splits it)."""
    layout = member_layout(name, member, ensemble)
    kind, part, count = member_part(name, member, ensemble)
    if kind == "network":
        std = with_std and count == 1 and predicts_std(part)
        model = onnx_model(part, return_std=std, split=count > 1)
    elif kind == "ensemble":
        model = ensemble_model(part, return_std=with_std and predicts_std(member))
    else:
        model, outputs = _sklearn_graph(name, member, ensemble, with_std=with_std)
        return model, outputs, layout, count
    return model, [output.name for output in model.graph.output], layout, count


def member_part(name: str, member: Any, ensemble: Any) -> tuple[str, Any, int]:
    """What the exporters convert for member ``name`` of the fitted ``ensemble``.

    Parameters
    ----------
    name : str
        The member's name.
    member : fitted estimator
        The member.
    ensemble : EnsembleClassifier or EnsembleRegressor
        Fitted, ``member`` one of its members.

    Returns
    -------
    kind : {"network", "ensemble", "estimator"}
        ``"network"``: one of this library's networks (``part``); ``"ensemble"``: an estimator
        that wraps an ensemble (a snapshot ensemble, an ensemble inside one network given
        ``sub_networks="fused"``, a search), whose ensemble (``part``) is converted whole;
        ``"estimator"``: anything else (``part`` is ``member``), which only ``skl2onnx`` may
        convert.
    part : estimator
        What is converted.
    count : int
        The outputs the member gives the combiner: its sub-networks when the ensemble splits
        it (``part`` is then the network that holds them: ``member``, or the ``network_`` of
        an ensemble inside one network), else 1.

    Raises
    ------
    ValueError
        A compressed (int8) network, which torch's exporters cannot read.
    """
    count = sum(1 for output in ensemble.output_names_ if ensemble.owner(output) is member)
    part = member
    if count > 1 and not hasattr(member, "network_function"):
        part = member.network_  # an ensemble inside one network, split
    if hasattr(part, "network_function") and hasattr(part, "task"):
        if is_quantised(part.model_):
            raise ValueError(
                f"member {name!r} holds a compressed (int8) network, which torch's exporters "
                "cannot read; build the ensemble from the float network and pass "
                "quantize='int8' to to_onnx"
            )
        return "network", part, count
    if isinstance(member, WrappedEnsembleMixin):
        return "ensemble", member.ensemble_, 1
    return "estimator", member, 1


def member_layout(name: str, member: Any, ensemble: Any) -> np.ndarray | None:
    """The float32 ``(member classes, ensemble classes)`` 0/1 matrix that lays a classifier
    member's probabilities on the ensemble's classes; ``None`` when they match or for a
    regressor."""
    if not is_classifier(ensemble):
        return None
    if not hasattr(member, "predict_proba"):
        raise ValueError(
            f"member {name!r} ({type(member).__name__}) has no predict_proba; the graph "
            "fuses class probabilities"
        )
    classes = list(ensemble.classes_)
    member_classes = list(member.classes_)
    if member_classes == classes:
        return None
    layout = np.zeros((len(member_classes), len(classes)), dtype=np.float32)
    for row, label in enumerate(member_classes):
        layout[row, classes.index(label)] = 1.0
    return layout


def _sklearn_graph(
    name: str, member: Any, ensemble: Any, *, with_std: bool
) -> tuple[Any, list[str]]:
    """A scikit-learn member through ``skl2onnx``, with the opsets of torch's exporter."""
    try:
        from skl2onnx import to_onnx as skl_to_onnx
    except ImportError as error:
        raise ImportError(
            f"member {name!r} is a scikit-learn estimator, which the export converts with "
            "skl2onnx: pip install 'torch-fusion-ensembles[deploy]'"
        ) from error
    classification = is_classifier(ensemble)
    if with_std and predicts_std(member):
        raise ValueError(
            f"member {name!r} ({type(member).__name__}) predicts its own standard deviation, "
            "which skl2onnx computes otherwise than scikit-learn (for BayesianRidge it does "
            "not centre X by X_offset_: 0.305 against 0.312 on digits); export without "
            "return_std and uncertainty, or without this member"
        )
    final = member.steps[-1][1] if hasattr(member, "steps") else member
    options: dict[Any, Any] = {}
    if classification:
        options[id(final)] = {"zipmap": False}
    example = np.zeros((1, ensemble.n_features_in_), dtype=np.float32)
    try:
        with warnings.catch_warnings(), quiet_logs("skl2onnx"):
            warnings.simplefilter("ignore")
            model = skl_to_onnx(
                member,
                example,
                options=options or None,
                target_opset={"": OPSET, "ai.onnx.ml": 3},
            )
    except Exception as error:  # skl2onnx raises bare RuntimeErrors and its own types
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ValueError(
            f"member {name!r} ({type(member).__name__}) cannot be converted to ONNX by "
            f"skl2onnx: {reason}"
        ) from error
    names = [output.name for output in model.graph.output]
    return model, [names[1] if classification else names[0]]  # a classifier: label, proba


def to_torch(
    estimator: Any,
    path: str | os.PathLike[str] | None = None,
    *,
    return_std: bool = False,
    member_outputs: bool = False,
    uncertainty: bool = False,
    overwrite: bool = False,
) -> torch.export.ExportedProgram:
    """A fitted ensemble of networks, or a network, as one ``torch.export`` program.

    The program holds what :func:`to_onnx` writes (every member with its input scaling and
    head, the combiner, the calibration), in float32, with a dynamic batch dimension;
    ``torch.export.load(path).module()(X)`` runs it with torch alone. Every member must be one
    of this library's networks: a scikit-learn member has no torch form (use :func:`to_onnx`).

    Parameters
    ----------
    estimator : fitted estimator
        An ensemble of ``NeuralClassifier`` / ``NeuralRegressor`` members, ensembles inside
        one network or snapshot ensembles (or an estimator wrapping one: a snapshot ensemble,
        an ensemble inside one network, a search), or one such network
        (:func:`members.to_torch`).
    path : str or path, optional
        Where to save the program (``torch.export.save``); its folder must exist.
    return_std, member_outputs, uncertainty : bool, default=False
        The extra outputs, as in :func:`to_onnx`, in that order after the prediction.
    overwrite : bool, default=False
        Replace an existing file at ``path``.

    Returns
    -------
    torch.export.ExportedProgram
        The program; ``program.module()`` is a callable ``nn.Module``.

    Raises
    ------
    NotFittedError, TypeError, ValueError, FileExistsError, FileNotFoundError
        As :func:`to_onnx`; a ``ValueError`` names a member that is not a network.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from members import NeuralClassifier
    >>> from ensembles import EnsembleClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> pool = [(f"net{seed}", NeuralClassifier(max_epochs=3, random_state=seed))
    ...         for seed in range(2)]
    >>> ensemble = EnsembleClassifier(pool, cv=None).fit(X, y)
    >>> program = to_torch(ensemble)
    >>> program.module()(torch.as_tensor(X[:2], dtype=torch.float32)).shape
    torch.Size([2, 3])
    """
    ensemble = ensemble_of(estimator)
    if ensemble is None:
        if member_outputs or uncertainty:
            raise ValueError(
                "member_outputs and uncertainty are outputs of an ensemble's program; "
                f"{type(estimator).__name__} is one network"
            )
        return network_to_torch(estimator, path, return_std=return_std, overwrite=overwrite)
    target = None if path is None else check_target(path, overwrite=overwrite)
    module = ServingEnsemble(
        ensemble, return_std=return_std, member_outputs=member_outputs, uncertainty=uncertainty
    )
    return export_program(module, ensemble.n_features_in_, target)


class ServingEnsemble(nn.Module):
    """A fitted ensemble of networks as one module: raw rows to its fused outputs.

    Every member's :class:`~members.export.ServingNetwork` (input scaling, network, head),
    laid on the ensemble's classes, stacked and fused by the ensemble's :class:`FusionHead`.

    Parameters
    ----------
    ensemble : EnsembleClassifier or EnsembleRegressor
        Fitted; every member one of this library's networks.
    return_std, member_outputs, uncertainty : bool, default=False
        The extra outputs, as in :func:`to_onnx`.

    Raises
    ------
    ValueError
        A member that is not a network (named), or a combiner with no graph form.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from members import NeuralClassifier
    >>> from ensembles import EnsembleClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> pool = [(f"net{seed}", NeuralClassifier(max_epochs=3, random_state=seed))
    ...         for seed in range(2)]
    >>> ensemble = EnsembleClassifier(pool, cv=None).fit(X, y)
    >>> proba = ServingEnsemble(ensemble)(torch.as_tensor(X[:3], dtype=torch.float32))
    >>> bool(np.allclose(proba.detach().numpy(), ensemble.predict_proba(X[:3]), atol=1e-5))
    True
    """

    def __init__(
        self,
        ensemble: Any,
        *,
        return_std: bool = False,
        member_outputs: bool = False,
        uncertainty: bool = False,
    ) -> None:
        super().__init__()
        self.head = FusionHead(
            ensemble, return_std=return_std, member_outputs=member_outputs, uncertainty=uncertainty
        )
        networks: list[nn.Module] = []
        self.with_std, layouts = [], []
        for name, member in ensemble.named_members_.items():
            kind, part, count = member_part(name, member, ensemble)
            if kind == "estimator":
                raise ValueError(
                    f"member {name!r} ({type(member).__name__}) is not a network of this "
                    "library and has no torch form; export the ensemble with to_onnx, which "
                    "converts scikit-learn members"
                )
            if kind == "network":
                std = self.head.needs_variance and count == 1 and predicts_std(part)
                networks.append(ServingNetwork(part, return_std=std, split=count > 1))
            else:
                std = self.head.needs_variance and predicts_std(member)
                networks.append(ServingEnsemble(part, return_std=std))
            self.with_std.append(std)
            columns = member_layout(name, member, ensemble)
            layouts.append(None if columns is None else torch.as_tensor(columns))
        self.networks = nn.ModuleList(networks)
        self.layouts = [laid is not None for laid in layouts]
        for index, laid in enumerate(layouts):
            if laid is not None:
                self.register_buffer(f"layout{index}", laid)

    def forward(self, x: torch.Tensor) -> Any:
        """The ensemble's outputs on raw rows.

        Parameters
        ----------
        x : Tensor of shape (n_samples, n_features)
            Raw features, float32.

        Returns
        -------
        Tensor, or a tuple of Tensors
            In the order of the head's ``output_names``.
        """
        means, variances = [], []
        n_outputs = self.head.n_outputs
        for index, network in enumerate(self.networks):
            output = network(x)
            mean, std = output if self.with_std[index] else (output, None)
            if self.layouts[index]:
                mean = mean @ getattr(self, f"layout{index}")
            variance = torch.zeros_like(mean) if std is None else std * std
            if mean.dim() != 3:  # one network's (batch, ...); sub-networks come stacked
                mean, variance = (part.reshape(1, -1, n_outputs) for part in (mean, variance))
            means.append(mean)
            variances.append(variance)
        stacked = torch.cat(means, dim=0)
        extra = {}
        if self.head.needs_variance:
            extra["variances"] = torch.cat(variances, dim=0)
        if self.head.passthrough:
            extra["x"] = x
        return self.head(stacked, **extra)


#: The default-domain opset torch's exporter writes; skl2onnx is asked for the same one.
OPSET = 20


class FusionHead(nn.Module):
    """An ensemble's combiner and calibration as a torch module on stacked member outputs.

    Exported by torch's ONNX exporter as the last part of the ensemble's graph; its inputs are
    the member outputs ``(n_members, batch, n_outputs)``, a regressor's member variances of
    that shape (when a standard deviation or the uncertainty is asked for) and the raw rows
    (stacking with ``passthrough``).

    Parameters
    ----------
    ensemble : EnsembleClassifier or EnsembleRegressor
        Fitted.
    return_std, member_outputs, uncertainty : bool, default=False
        The extra outputs, as in :func:`to_onnx`.

    Raises
    ------
    ValueError
        The combiner or its meta-learner has no graph form.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from ensembles import EnsembleClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> ensemble = EnsembleClassifier([("lr", LogisticRegression())], cv=None).fit(X, y)
    >>> stack = torch.as_tensor(ensemble.member_predictions(X[:2]), dtype=torch.float32)
    >>> proba = FusionHead(ensemble)(stack)
    >>> bool(np.allclose(proba.numpy(), ensemble.predict_proba(X[:2]), atol=1e-6))
    True
    """

    weights: torch.Tensor
    variance_scale: torch.Tensor | None

    def __init__(
        self,
        ensemble: Any,
        *,
        return_std: bool = False,
        member_outputs: bool = False,
        uncertainty: bool = False,
    ) -> None:
        super().__init__()
        self.classification = is_classifier(ensemble)
        self.n_members = len(ensemble.output_names_)  # a split member gives several
        self.n_outputs = len(ensemble.classes_) if self.classification else ensemble.n_outputs_
        self.n_features = ensemble.n_features_in_
        combiner = ensemble.combiner_
        while isinstance(combiner, AutoCombiner):
            combiner = combiner.combiner_
        self.rule, self.passthrough = self._rule(combiner)
        mixture = uncertainty_parts.member_weights(ensemble.combiner_, self.n_members)
        self.register_buffer("weights", torch.as_tensor(mixture, dtype=torch.float32))
        weights = getattr(ensemble, "class_weight_", None)
        self.shift = None if weights is None else PriorShift(weights)
        calibrator = getattr(ensemble, "calibrator_", None)
        self.temperature = (
            calibrator.temperature_ if isinstance(calibrator, TemperatureScaling) else None
        )
        scale = calibrator.scale_ if isinstance(calibrator, VarianceScaling) else None
        self.register_buffer(
            "variance_scale",
            None if scale is None else torch.as_tensor(scale, dtype=torch.float32),
        )
        self.flat = not self.classification and ensemble.target_ndim == 1
        self.return_std = return_std
        self.member_outputs = member_outputs
        self.uncertainty = uncertainty
        first = "proba" if self.classification else "prediction"
        self.output_names = [first]
        if return_std:
            self.output_names.append("std")
        if member_outputs:
            self.output_names.append("member_outputs")
        if uncertainty:
            self.output_names.extend(["total", "aleatoric", "epistemic"])

    def _rule(self, combiner: BaseCombiner) -> tuple[nn.Module, bool]:
        """The combiner as a module, and whether it reads the raw rows."""
        weights = combiner.mixture_weights()
        if weights is not None:
            return _WeightedMean(weights), False
        if isinstance(combiner, MeanCombiner):
            return _ProbabilityMean(combiner.method), False
        if isinstance(combiner, VotingCombiner):
            return _Vote(), False
        if isinstance(combiner, StackingCombiner):
            return _Stacking(combiner, self.n_outputs, self.n_features), combiner.passthrough
        raise ValueError(
            f"the combiner {type(combiner).__name__} has no graph form; the export supports "
            f"{SUPPORTED_COMBINERS}"
        )

    def forward(
        self,
        members: torch.Tensor,
        variances: torch.Tensor | None = None,
        x: torch.Tensor | None = None,
    ) -> Any:
        """The ensemble's outputs from the stacked member outputs.

        Parameters
        ----------
        members : Tensor of shape (n_members, batch, n_outputs)
            Member probabilities (a classifier) or predictions (a regressor).
        variances : Tensor of shape (n_members, batch, n_outputs), optional
            The member variances: a regressor asked for ``std`` or the uncertainty.
        x : Tensor of shape (batch, n_features), optional
            The raw rows: stacking with ``passthrough``.

        Returns
        -------
        Tensor, or a tuple of Tensors
            In the order of ``output_names``.
        """
        fused = self.rule(members, x)
        outputs: list[torch.Tensor] = []
        if self.classification:
            if self.temperature is not None:
                logp = torch.log(fused.clamp(0.0, 1.0).clamp_min(EPS))
                fused = torch.softmax(logp / self.temperature, dim=1)
            if self.shift is not None:
                fused = self.shift(fused)
            outputs.append(fused)
            if self.member_outputs:
                outputs.append(members)
            if self.uncertainty:
                aleatoric = torch.tensordot(self.weights, _entropy(members), dims=1)
                mixture = torch.tensordot(self.weights, members, dims=1)
                epistemic = (_entropy(mixture) - aleatoric).clamp_min(0.0)
                outputs.extend([_entropy(fused), aleatoric, epistemic])
        else:
            outputs.append(fused.reshape(-1) if self.flat else fused)
            parts: list[torch.Tensor] = []
            if variances is not None:
                aleatoric = torch.tensordot(self.weights, variances, dims=1)
                spread = (members - fused.unsqueeze(0)) ** 2
                epistemic = torch.tensordot(self.weights, spread, dims=1)
                parts = [aleatoric + epistemic, aleatoric, epistemic]
                if self.variance_scale is not None:
                    parts = [part * self.variance_scale for part in parts]
                if self.flat:
                    parts = [part.reshape(-1) for part in parts]
            if self.return_std:
                outputs.append(torch.sqrt(parts[0]))
            if self.member_outputs:
                outputs.append(members)
            if self.uncertainty:
                outputs.extend(parts)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    @property
    def needs_variance(self) -> bool:
        """Whether the head takes the member variances (a regressor's ``std`` or
        uncertainty)."""
        return not self.classification and (self.return_std or self.uncertainty)

    def to_onnx(self) -> Any:
        """This head as an ONNX model (torch's exporter), batch dimension dynamic.

        Returns
        -------
        onnx.ModelProto
            Inputs ``members`` (and ``variances``, ``x``); the outputs of ``output_names``.
        """
        batch = torch.export.Dim("batch")
        example = torch.full((self.n_members, 2, self.n_outputs), 0.5)
        names = ["members"]
        kwargs: dict[str, torch.Tensor] = {}
        shapes: dict[str, dict[int, Any]] = {"members": {1: batch}}
        if self.needs_variance:
            kwargs["variances"] = torch.ones(self.n_members, 2, self.n_outputs)
            shapes["variances"] = {1: batch}
        if self.passthrough:
            kwargs["x"] = torch.zeros(2, self.n_features)
            shapes["x"] = {0: batch}
        names.extend(kwargs)
        with warnings.catch_warnings(), quiet_logs("torch.onnx", "onnxscript"):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                self.eval(),
                (example,),
                kwargs=kwargs,
                dynamo=True,
                input_names=names,
                output_names=self.output_names,
                dynamic_shapes=shapes,
                verbose=False,
            )
        assert program is not None
        return program.model_proto


def _entropy(proba: torch.Tensor) -> torch.Tensor:
    """Entropy in nats over the last axis, ``0 log 0 = 0``."""
    safe = torch.where(proba > 0, proba, torch.ones_like(proba))
    return -(proba * torch.log(safe)).sum(dim=-1)


class _WeightedMean(nn.Module):
    """``sum_m w_m p_m``: the mean, learned weights, Caruana selection, the snapshot rule."""

    weights: torch.Tensor

    def __init__(self, weights: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("weights", torch.as_tensor(weights, dtype=torch.float32))

    def forward(self, members: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
        return torch.tensordot(self.weights, members, dims=1)


class _ProbabilityMean(nn.Module):
    """``MeanCombiner(method="geometric" | "logit")``."""

    def __init__(self, method: str) -> None:
        super().__init__()
        self.method = method

    def forward(self, members: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
        clipped = members.clamp(EPS, 1.0 - EPS)
        if self.method == "geometric":
            return torch.softmax(torch.log(clipped).mean(dim=0), dim=1)
        fused = torch.sigmoid(torch.logit(clipped).mean(dim=0))
        return fused / fused.sum(dim=1, keepdim=True)


class _Vote(nn.Module):
    """``VotingCombiner``: each class's share of the members' most probable classes (ties to
    the first, as ``argmax``)."""

    def forward(self, members: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
        votes = nn.functional.one_hot(members.argmax(dim=2), members.shape[2])
        return votes.to(members.dtype).mean(dim=0)


class _Stacking(nn.Module):
    """``StackingCombiner`` with a linear meta-learner: its features from the member outputs
    (and the raw rows), ``coef_`` and ``intercept_``, and the meta-learner's link (softmax,
    one-vs-rest sigmoids, the binary sigmoid, or none for a regressor)."""

    coef: torch.Tensor
    intercept: torch.Tensor
    layout: torch.Tensor

    def __init__(self, combiner: StackingCombiner, n_outputs: int, n_features: int) -> None:
        super().__init__()
        meta = combiner.final_estimator_
        self.classification = bool(combiner.is_classification_)
        self.logit = combiner.features == "logit"
        self.binary = self.classification and n_outputs == 2
        self.passthrough = combiner.passthrough
        self.n_outputs = n_outputs
        n_inputs = (1 if self.binary else n_outputs) * combiner.n_members_
        n_inputs += n_features if self.passthrough else 0
        self.link = _linear_link(meta, n_inputs, self.classification)
        coef = np.atleast_2d(np.asarray(meta.coef_, dtype=np.float64))
        self.register_buffer("coef", torch.as_tensor(coef.T, dtype=torch.float32))
        intercept = np.atleast_1d(np.asarray(meta.intercept_, dtype=np.float64))
        self.register_buffer("intercept", torch.as_tensor(intercept, dtype=torch.float32))
        layout = np.eye(n_outputs, dtype=np.float32)
        if self.classification:
            columns = np.asarray(meta.classes_, dtype=int)
            layout = np.zeros((len(columns), n_outputs), dtype=np.float32)
            layout[np.arange(len(columns)), columns] = 1.0
        self.register_buffer("layout", torch.as_tensor(layout))

    def forward(self, members: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
        values = members
        if self.classification:
            if self.logit:
                values = torch.log(members.clamp_min(EPS))
            if self.binary:
                first = values[:, :, 0] if self.logit else torch.zeros_like(values[:, :, 0])
                values = (values[:, :, 1] - first).unsqueeze(2)
        stacked = values.permute(1, 0, 2).reshape(values.shape[1], -1)
        if self.passthrough:
            assert x is not None
            stacked = torch.cat([stacked, x], dim=1)
        decision = stacked @ self.coef + self.intercept
        if self.link == "identity":
            return decision
        if self.link == "sigmoid":  # binary: the positive class
            positive = torch.sigmoid(decision)
            proba = torch.cat([1.0 - positive, positive], dim=1)
        elif self.link == "softmax":
            proba = torch.softmax(decision, dim=1)
        else:  # one-vs-rest: sigmoids, normalised
            scores = torch.sigmoid(decision)
            proba = scores / scores.sum(dim=1, keepdim=True)
        return proba @ self.layout


def _linear_link(meta: Any, n_inputs: int, classification: bool) -> str:
    """How ``meta``'s outputs follow from ``X @ coef_.T + intercept_``, checked on probe rows
    against its own ``decision_function`` / ``predict_proba`` / ``predict``; a ``ValueError``
    naming it when it is not linear."""
    name = type(meta).__name__
    refusal = (
        f"StackingCombiner's final_estimator {name} has no graph form; the export supports "
        "linear and logistic meta-learners (coef_ and intercept_, such as LogisticRegression, "
        "RidgeCV, LinearRegression)"
    )
    if not (hasattr(meta, "coef_") and hasattr(meta, "intercept_")):
        raise ValueError(refusal)
    probe = np.random.default_rng(0).normal(size=(8, n_inputs))
    coef = np.atleast_2d(np.asarray(meta.coef_, dtype=np.float64))
    if coef.shape[1] != n_inputs:
        raise ValueError(refusal)
    decision = probe @ coef.T + np.asarray(meta.intercept_, dtype=np.float64)
    if not classification:
        expected = np.asarray(meta.predict(probe), dtype=np.float64).reshape(decision.shape)
        if np.allclose(expected, decision, rtol=1e-6, atol=1e-8):
            return "identity"
        raise ValueError(refusal)
    proba = np.asarray(meta.predict_proba(probe), dtype=np.float64)
    if decision.shape[1] == 1:
        candidates = {"sigmoid": 1.0 / (1.0 + np.exp(-decision[:, 0]))}
        if np.allclose(proba[:, 1], candidates["sigmoid"], rtol=1e-6, atol=1e-9):
            return "sigmoid"
        raise ValueError(refusal)
    softmax = np.exp(decision - decision.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    if np.allclose(proba, softmax, rtol=1e-6, atol=1e-9):
        return "softmax"
    scores = 1.0 / (1.0 + np.exp(-decision))
    if np.allclose(proba, scores / scores.sum(axis=1, keepdims=True), rtol=1e-6, atol=1e-9):
        return "ovr"
    raise ValueError(refusal)
