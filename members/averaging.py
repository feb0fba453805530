"""Averaging networks in weight space: the arithmetic of a model soup.

:func:`average_networks` averages the weights of networks of one architecture, and
:func:`refresh_batch_norm` recomputes the batch-norm statistics of the result on training rows,
as stochastic weight averaging does (:func:`torch.optim.swa_utils.update_bn`): the average of
the members' running statistics is not the statistics of the averaged network's activations.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import update_bn

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)

# rows per forward pass when the batch-norm statistics are recomputed
BN_BATCH = 512


def average_networks(
    networks: Sequence[nn.Module], weights: Sequence[float] | np.ndarray | None = None
) -> nn.Module:
    """A copy of the first network whose weights are the (weighted) mean of all of theirs.

    Floating-point entries of the state (weights, biases, batch-norm statistics) are averaged;
    integer ones (a batch norm's step count) are the first network's.

    Parameters
    ----------
    networks : sequence of nn.Module
        Networks of one architecture (left unchanged).
    weights : sequence of float, optional
        One non-negative weight per network (normalised to sum to one); ``None``: equal.

    Returns
    -------
    nn.Module
        The averaged network (a new object).

    Examples
    --------
    >>> a, b = nn.Linear(2, 1), nn.Linear(2, 1)
    >>> mean = average_networks([a, b])
    >>> bool(torch.allclose(mean.bias, (a.bias + b.bias) / 2))
    True
    """
    if not networks:
        raise ValueError("average_networks needs at least one network")
    share = np.full(len(networks), 1.0 / len(networks))
    if weights is not None:
        share = np.asarray(weights, dtype=np.float64)
        if share.shape != (len(networks),) or (share < 0).any() or share.sum() <= 0:
            raise ValueError(
                f"weights must be {len(networks)} non-negative numbers, not all zero; got "
                f"{np.asarray(weights).tolist()}"
            )
        share = share / share.sum()
    states = [network.state_dict() for network in networks]
    mean = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            total = sum(
                float(w) * state[key].double() for w, state in zip(share, states, strict=True)
            )
            mean[key] = torch.as_tensor(total).to(first.dtype)
        else:
            mean[key] = first.clone()
    result = copy.deepcopy(networks[0])
    result.load_state_dict(mean)
    return result


def has_batch_norm(network: nn.Module) -> bool:
    """Whether ``network`` holds a batch norm that tracks running statistics.

    Examples
    --------
    >>> has_batch_norm(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)))
    True
    """
    return any(
        isinstance(module, BATCH_NORMS) and module.track_running_stats
        for module in network.modules()
    )


def refresh_batch_norm(network: nn.Module, inputs: np.ndarray, batch_size: int = BN_BATCH) -> None:
    """Recompute ``network``'s batch-norm statistics on ``inputs``, in place.

    The running means and variances become the averages of the batches' statistics over
    ``inputs`` (SWA's ``update_bn``, in batches of ``batch_size``); the weights are
    untouched. The network is left in eval mode. A float64 network (a fitted estimator's)
    is run in float32 on a copy, several times faster on a CPU; the statistics come back in
    float64.

    Parameters
    ----------
    network : nn.Module
    inputs : ndarray of shape (n_samples, n_features)
        Rows as the network takes them (scaled), at least 2.
    batch_size : int, default=512
        Rows per forward pass.
    """
    work = network
    if next(network.parameters()).dtype == torch.float64:
        work = copy.deepcopy(network).float()
    rows = torch.from_numpy(np.asarray(inputs)).to(next(work.parameters()).dtype)
    if len(rows) < 2:
        raise ValueError(f"batch-norm statistics need at least 2 rows; got {len(rows)}")
    # a last batch of one row would fail in batch norm: fold it into the one before
    batches = list(rows.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [torch.cat(batches[-2:])]
    with torch.no_grad():
        update_bn(batches, work)
    if work is not network:
        statistics = {
            f"{path}.{name}": value
            for path, module in work.named_modules()
            if isinstance(module, BATCH_NORMS)
            for name, value in module.named_buffers(recurse=False)
        }
        network.load_state_dict(statistics, strict=False)  # copied, in float64
    network.eval()
