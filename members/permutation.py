"""The permutation symmetry of a network's hidden units, and weight matching.

Swap two hidden units of a feed-forward network (their rows in the layer that computes them,
their entries in the batch norm after it, their columns in the layer that reads them) and the
network computes the same function. Two networks trained from different initialisations are
therefore far apart in weight space even when they compute nearly the same function, and the
average of their weights is a poor network. Weight matching (Ainsworth et al., "Git Re-Basin",
ICLR 2023) finds, for each hidden layer, the permutation of one network's units that best
matches the other's weights, one layer at a time with the Hungarian assignment
(:func:`scipy.optimize.linear_sum_assignment`), until no layer changes.

The functions act on one network (an :class:`torch.nn.Module`):

- :func:`permutation_spec` reads which weights each hidden layer's permutation moves, from the
  network's layers in order (``Linear``, ``Conv1d``, ``Conv2d``, batch norm, and what acts on
  each unit alone: activations, dropout, pooling, flattening), and checks that a permuted copy
  computes the same function;
- :func:`permute` applies permutations;
- :func:`weight_matching` finds the permutations that align one network to another from their
  weights alone;
- :func:`activation_matching` finds them from the hidden units' activations on rows (the
  paper's other method: it needs data, and matches what the units compute).

A network whose layers are not one chain (a residual connection, an ensemble inside one
network) is refused by name.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from members.mlp import ACTIVATIONS
from members.subnetworks import SubNetworks

# layers that compute units: their weight's first dimension is the output unit, the second the
# input unit
WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
# layers that act on each unit (channel) alone, so a permutation passes through them
PASS_THROUGH = (
    *ACTIVATIONS.values(),
    nn.Identity,
    nn.Dropout,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.Flatten,
)
# a permuted copy must compute the network's function to this (relative) tolerance
TOLERANCE = 1e-6


@dataclass(frozen=True)
class PermutationSpec:
    """Which entries of a network's state each hidden layer's permutation moves.

    Parameters
    ----------
    sizes : tuple of int
        The number of units of each hidden layer (a permutation of ``range(size)`` each).
    axes : dict of str to tuple
        For each state-dict entry, per dimension, the hidden layer whose permutation moves it
        (``None``: not moved). A dimension longer than its layer's units (a dense layer after a
        flattened convolution reads ``units * positions`` inputs, channel first) moves in
        blocks.

    Examples
    --------
    >>> from members.mlp import MLP
    >>> spec = permutation_spec(MLP(4, 2, hidden=(8, 6)), n_features=4)
    >>> spec.sizes
    (8, 6)
    >>> spec.axes["layers.2.weight"]
    (1, 0)
    """

    sizes: tuple[int, ...]
    axes: dict[str, tuple[int | None, ...]]


def permutation_spec(network: nn.Module, n_features: int) -> PermutationSpec:
    """The hidden layers of ``network`` and the weights their permutations move.

    The layers are read in the order the network registers them, which must be the order it
    applies them (one chain); a permuted copy is then checked to compute the same function on
    random rows of ``n_features``, so a network whose ``forward`` does something the layers do
    not say (a residual sum, a reshaping) is refused rather than aligned wrongly.

    Parameters
    ----------
    network : nn.Module
        A chain of ``Linear`` / ``Conv1d`` / ``Conv2d`` layers with batch norms, activations,
        dropout, pooling and flattening between them (the ``mlp``, ``cnn1d`` and ``cnn2d``
        backbones).
    n_features : int
        Inputs per row, for the check.

    Returns
    -------
    PermutationSpec
        The hidden layers' sizes and the axes their permutations move.

    Raises
    ------
    ValueError
        For a layer the alignment does not know, or a network whose function a permutation of
        its units changes.

    Examples
    --------
    >>> from members.cnn1d import CNN1d
    >>> permutation_spec(CNN1d(40, 10, channels=(8, 16)), n_features=40).sizes
    (8, 16)
    """
    name = type(network).__name__
    if isinstance(network, SubNetworks):
        raise ValueError(
            f"{name} is an ensemble inside one network; its sub-networks share layers, so "
            "weight matching does not apply to it"
        )
    sizes: list[int] = []
    axes: dict[str, tuple[int | None, ...]] = {}
    current: int | None = None  # the hidden layer whose units the running activations are
    for path, module in network.named_modules():
        if list(module.children()):
            continue
        if isinstance(module, WEIGHT_LAYERS):
            inputs = module.in_features if isinstance(module, nn.Linear) else module.in_channels
            outputs = module.out_features if isinstance(module, nn.Linear) else module.out_channels
            if getattr(module, "groups", 1) != 1:
                raise ValueError(f"{name}: the grouped layer {path!r} cannot be aligned")
            if current is not None and inputs % sizes[current]:
                raise ValueError(
                    f"{name}: layer {path!r} reads {inputs} inputs, which do not follow the "
                    f"{sizes[current]} units before it; its layers are not one chain (a "
                    "residual network?), so the alignment does not apply. Use a soup without "
                    "align."
                )
            sizes.append(outputs)
            unit = len(sizes) - 1
            axes[f"{path}.weight"] = (unit, current) + (None,) * (module.weight.dim() - 2)
            if module.bias is not None:
                axes[f"{path}.bias"] = (unit,)
            current = unit
        elif isinstance(module, NORMS):
            if current is None or module.num_features != sizes[current]:
                raise ValueError(
                    f"{name}: the batch norm {path!r} does not follow a layer of "
                    f"{module.num_features} units"
                )
            for entry, _ in [*module.named_parameters(), *module.named_buffers()]:
                axes[f"{path}.{entry}"] = (current,) if entry != "num_batches_tracked" else ()
        elif isinstance(module, PASS_THROUGH):
            continue
        else:
            raise ValueError(
                f"{name}: the alignment does not know the layer {path!r} "
                f"({type(module).__name__}); it aligns chains of Linear, Conv1d and Conv2d "
                "layers with batch norms, activations, dropout, pooling and flattening (the "
                "mlp, cnn1d and cnn2d backbones). Use a soup without align."
            )
    if not sizes:
        raise ValueError(f"{name} has no Linear or convolutional layer to align")
    # the last layer's units are the network's outputs, which keep their order
    last = len(sizes) - 1
    axes = {
        key: tuple(None if axis == last else axis for axis in dims) for key, dims in axes.items()
    }
    state = network.state_dict()
    unknown = [key for key in state if key not in axes]
    if unknown:
        raise ValueError(
            f"{name}: the alignment does not know the weights {unknown[:3]}; it aligns chains "
            "of Linear, Conv1d and Conv2d layers with batch norms"
        )
    spec = PermutationSpec(tuple(sizes[:-1]), axes)
    _check_symmetry(network, spec, n_features)
    return spec


def _check_symmetry(network: nn.Module, spec: PermutationSpec, n_features: int) -> None:
    """Refuse ``network`` unless a randomly permuted copy computes the same outputs."""
    rng = np.random.RandomState(0)
    perms = [rng.permutation(size) for size in spec.sizes]
    original = copy.deepcopy(network).double().eval()
    permuted = permute(original, perms, spec).eval()
    rows = torch.from_numpy(rng.standard_normal((5, n_features)))
    with torch.no_grad():
        expected, got = original(rows), permuted(rows)
    gap = float((expected - got).abs().max())
    if not gap <= TOLERANCE * (1.0 + float(expected.abs().max())):
        raise ValueError(
            f"{type(network).__name__}: permuting its hidden units changes its outputs (by "
            f"{gap:.3g}), so its forward is not the chain its layers list (a residual "
            "connection?); the alignment does not apply to it. Use a soup without align."
        )


def _take(tensor: torch.Tensor, dim: int, perm: np.ndarray) -> torch.Tensor:
    """``tensor`` with dimension ``dim`` reordered by ``perm`` (new unit ``i`` is old unit
    ``perm[i]``), in blocks when the dimension is longer than ``perm``."""
    n = len(perm)
    index = torch.as_tensor(np.array(perm), dtype=torch.long)
    size = tensor.shape[dim]
    if size == n:
        return tensor.index_select(dim, index)
    shape = (*tensor.shape[:dim], n, size // n, *tensor.shape[dim + 1 :])
    return tensor.reshape(shape).index_select(dim, index).reshape(tensor.shape)


def _permuted_state(
    state: dict[str, torch.Tensor],
    spec: PermutationSpec,
    perms: Sequence[np.ndarray],
    skip: int | None = None,
) -> dict[str, torch.Tensor]:
    """``state`` with every axis permuted (but hidden layer ``skip``)."""
    out = {}
    for key, value in state.items():
        for dim, axis in enumerate(spec.axes.get(key, ())):
            if axis is not None and axis != skip:
                value = _take(value, dim, perms[axis])
        out[key] = value
    return out


def _check_perms(spec: PermutationSpec, perms: Sequence[np.ndarray]) -> list[np.ndarray]:
    if len(perms) != len(spec.sizes):
        raise ValueError(
            f"permutations must hold one permutation per hidden layer ({len(spec.sizes)}); "
            f"got {len(perms)}"
        )
    checked = []
    for i, (perm, size) in enumerate(zip(perms, spec.sizes, strict=True)):
        perm = np.asarray(perm)
        if perm.shape != (size,) or not np.array_equal(np.sort(perm), np.arange(size)):
            raise ValueError(
                f"permutations[{i}] must be a permutation of range({size}); got shape {perm.shape}"
            )
        checked.append(perm)
    return checked


def permute(
    network: nn.Module, permutations: Sequence[np.ndarray], spec: PermutationSpec
) -> nn.Module:
    """A copy of ``network`` with each hidden layer's units reordered.

    It computes the same function: each layer's output units, their batch-norm entries and the
    next layer's input units move together.

    Parameters
    ----------
    network : nn.Module
        The network (left unchanged).
    permutations : sequence of ndarray
        One per hidden layer of ``spec``: unit ``i`` of the copy is unit ``permutations[k][i]``
        of ``network``.
    spec : PermutationSpec
        From :func:`permutation_spec`.

    Returns
    -------
    nn.Module
        The permuted copy.

    Examples
    --------
    >>> import torch
    >>> from members.mlp import MLP
    >>> net = MLP(4, 2, hidden=(3,)).double().eval()
    >>> spec = permutation_spec(net, 4)
    >>> twin = permute(net, [np.array([2, 0, 1])], spec)
    >>> x = torch.randn(5, 4, dtype=torch.float64)
    >>> bool(torch.allclose(net(x), twin(x)))
    True
    """
    perms = _check_perms(spec, permutations)
    twin = copy.deepcopy(network)
    twin.load_state_dict(_permuted_state(network.state_dict(), spec, perms))
    return twin


def _unit_rows(tensor: torch.Tensor, dim: int, n: int) -> torch.Tensor:
    """``tensor`` as ``(n, -1)``: dimension ``dim`` (``n`` units, or ``n`` blocks) first."""
    size = tensor.shape[dim]
    if size != n:
        tensor = tensor.reshape(*tensor.shape[:dim], n, size // n, *tensor.shape[dim + 1 :])
    return tensor.movedim(dim, 0).reshape(n, -1)


def weight_matching(
    reference: nn.Module,
    other: nn.Module,
    spec: PermutationSpec,
    *,
    max_iter: int = 100,
    random_state: int = 0,
) -> list[np.ndarray]:
    """The permutations of ``other``'s hidden units that best match ``reference``'s weights.

    Ainsworth et al.'s weight matching: the permutations maximise the sum over all weights of
    ``<W_reference, permuted W_other>``. It is solved one hidden layer at a time (a linear
    assignment, given the other layers' permutations), in a random order, until a whole round
    changes nothing or ``max_iter`` rounds have run. Batch-norm statistics move with their
    units but do not count in the match.

    Parameters
    ----------
    reference, other : nn.Module
        Two networks of one architecture (left unchanged).
    spec : PermutationSpec
        From :func:`permutation_spec` of either.
    max_iter : int, default=100
        Rounds over the layers at most.
    random_state : int, default=0
        Seeds the order of the layers in each round.

    Returns
    -------
    list of ndarray
        One permutation per hidden layer, for :func:`permute` of ``other``.

    Examples
    --------
    >>> from members.mlp import MLP
    >>> net = MLP(4, 2, hidden=(6, 5))
    >>> spec = permutation_spec(net, 4)
    >>> shuffled = permute(net, [np.roll(np.arange(6), 1), np.arange(5)[::-1]], spec)
    >>> [p.tolist() for p in weight_matching(shuffled, net, spec)]  # net -> shuffled
    [[5, 0, 1, 2, 3, 4], [4, 3, 2, 1, 0]]
    """
    weights = {
        key
        for key, dims in spec.axes.items()
        if any(axis is not None for axis in dims) and "running_" not in key
    }
    a = {k: v.detach().double() for k, v in reference.state_dict().items() if k in weights}
    b = {k: v.detach().double() for k, v in other.state_dict().items() if k in weights}
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise ValueError("reference and other must have the same architecture")
    perms = [np.arange(size) for size in spec.sizes]
    rng = np.random.RandomState(random_state)
    for _ in range(max_iter):
        changed = False
        for layer in rng.permutation(len(spec.sizes)):
            n = spec.sizes[layer]
            moved = _permuted_state(b, spec, perms, skip=layer)
            cost = torch.zeros(n, n, dtype=torch.float64)
            for key, dims in spec.axes.items():
                for dim, axis in enumerate(dims):
                    if axis == layer and key in a:
                        cost += _unit_rows(a[key], dim, n) @ _unit_rows(moved[key], dim, n).T
            scores = cost.numpy()
            _, best = linear_sum_assignment(scores, maximize=True)
            rows = np.arange(n)
            if scores[rows, best].sum() > scores[rows, perms[layer]].sum() + 1e-12:
                perms[layer], changed = best, True
        if not changed:
            break
    return perms


def _unit_taps(network: nn.Module, n_hidden: int) -> list[str]:
    """For each hidden layer, the last module of the chain whose output still holds that
    layer's units one per channel (after its batch norm, activation and pooling; before a
    flattening)."""
    taps: list[str] = []
    for path, module in network.named_modules():
        if list(module.children()):
            continue
        if isinstance(module, WEIGHT_LAYERS):
            taps.append(path)
        elif taps and not isinstance(module, nn.Flatten):
            taps[-1] = path
    return taps[:n_hidden]


def _activation_products(
    reference: nn.Module,
    other: nn.Module,
    spec: PermutationSpec,
    inputs: np.ndarray,
    batch_size: int,
) -> list[torch.Tensor]:
    """Per hidden layer, ``Z_reference @ Z_other.T`` summed over the rows (and positions)."""
    n_hidden = len(spec.sizes)
    nets = [copy.deepcopy(net).float().eval() for net in (reference, other)]
    taps = [_unit_taps(net, n_hidden) for net in nets]
    captured: list[dict[int, torch.Tensor]] = [{}, {}]
    handles = []
    for side, (net, paths) in enumerate(zip(nets, taps, strict=True)):
        modules = dict(net.named_modules())
        for layer, path in enumerate(paths):

            def hook(_module, _inputs, output, side=side, layer=layer):
                captured[side][layer] = output

            handles.append(modules[path].register_forward_hook(hook))
    products = [torch.zeros(n, n, dtype=torch.float64) for n in spec.sizes]
    try:
        with torch.no_grad():
            for rows in torch.from_numpy(np.asarray(inputs, dtype=np.float32)).split(batch_size):
                for net in nets:
                    try:
                        net(rows)
                    except RuntimeError as error:
                        raise ValueError(
                            f"inputs of shape {tuple(inputs.shape)} do not fit the network "
                            f"{type(net).__name__}: {error}"
                        ) from error
                for layer, n in enumerate(spec.sizes):
                    a, b = (outputs[layer] for outputs in captured)
                    for paths, z in zip(taps, (a, b), strict=True):
                        if z.shape[1] != n:
                            raise ValueError(
                                f"{type(reference).__name__}: the output of {paths[layer]!r} "
                                f"has {z.shape[1]} channels, not the {n} units of hidden "
                                f"layer {layer} of the spec (networks of other widths?)"
                            )
                    a, b = (z.movedim(1, 0).reshape(n, -1).double() for z in (a, b))
                    products[layer] += a @ b.T
    finally:
        for handle in handles:
            handle.remove()
    return products


def activation_matching(
    reference: nn.Module,
    other: nn.Module,
    spec: PermutationSpec,
    inputs: np.ndarray,
    *,
    batch_size: int = 512,
) -> list[np.ndarray]:
    """The permutations of ``other``'s hidden units whose activations best match ``reference``'s.

    Ainsworth et al.'s activation matching: for each hidden layer, the permutation ``P`` that
    minimises ``||Z_reference - P Z_other||`` over the rows, where ``Z`` are the layer's unit
    activations (after its batch norm, activation and pooling; every position of a
    convolution's output counts as a row). Each layer is one linear assignment on
    ``Z_reference Z_other^T``, independent of the others. Unlike :func:`weight_matching` it
    needs rows (training rows, never the test set) and matches what the units compute.

    Parameters
    ----------
    reference, other : nn.Module
        Two networks of one architecture (left unchanged).
    spec : PermutationSpec
        From :func:`permutation_spec` of either.
    inputs : ndarray of shape (n_samples, n_features)
        Rows as the networks take them (scaled).
    batch_size : int, default=512
        Rows per forward pass.

    Returns
    -------
    list of ndarray
        One permutation per hidden layer, for :func:`permute` of ``other``.

    Examples
    --------
    >>> import torch
    >>> from members.mlp import MLP
    >>> _ = torch.manual_seed(0)
    >>> net = MLP(4, 2, hidden=(6, 5))
    >>> spec = permutation_spec(net, 4)
    >>> shuffled = permute(net, [np.roll(np.arange(6), 1), np.arange(5)[::-1]], spec)
    >>> rows = np.random.RandomState(0).standard_normal((64, 4))
    >>> [p.tolist() for p in activation_matching(shuffled, net, spec, rows)]
    [[5, 0, 1, 2, 3, 4], [4, 3, 2, 1, 0]]
    """
    inputs = np.asarray(inputs)
    if inputs.ndim != 2 or len(inputs) < 1:
        raise ValueError(
            f"inputs must be a 2-D array of at least one row; got shape {inputs.shape}"
        )
    products = _activation_products(reference, other, spec, inputs, batch_size)
    return [linear_sum_assignment(p.numpy(), maximize=True)[1] for p in products]
