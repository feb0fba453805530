"""Batch augmentations for distillation: fresh views of each student batch, in torch.

Function matching (Beyer et al., 2022) labels the very view the student sees with the teacher,
so every view is new: nothing here is cached. An :class:`Augmentation` turns a batch of raw
input rows into a batch of views with a given random generator:

- ``shift``: a 1-D signal moves by up to ``shift`` positions (an image by up to ``shift``
  pixels each way), the edge value filling the gap;
- ``scale``: each row is multiplied by a factor in ``[1 - scale, 1 + scale]``;
- ``noise``: Gaussian noise of ``noise`` times each feature's standard deviation;
- ``mixup``: each row is mixed with another row of the batch, weight ``λ ~ U(0, 1)`` (the
  aggressive mixup that Beyer et al. found best for distillation).

:func:`augmentation_for` picks them from the student's network: shifts, scaling and noise for
signals and images (a network with ``input_kind = "signal"`` or an ``input_shape``), mixup for
any data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

# what augment="auto" uses, chosen on validation splits of the training data (see
# experiments/mnist1d_distill.py --select)
SIGNAL_SHIFT_FRACTION = 0.05
SIGNAL_SCALE = 0.1
NOISE = 0.05


@dataclass
class Augmentation:
    """Fresh views of a batch of raw rows ``(batch, n_features)``.

    Parameters
    ----------
    mixup : bool, default=True
    shift : int, default=0
        Largest shift, in positions of a signal or pixels of an image.
    scale : float, default=0.0
    noise : float, default=0.0
        Noise standard deviation, as a fraction of ``feature_std``.
    feature_std : ndarray of shape (n_features,), optional
        Each feature's standard deviation in the training data (needed when ``noise > 0``).
    image_shape : tuple of int, optional
        ``(channels, height, width)``: rows are images, shifted in two dimensions.

    Examples
    --------
    >>> import torch
    >>> views = Augmentation(shift=2, noise=0.1, feature_std=np.ones(8))
    >>> views(torch.zeros(4, 8), torch.Generator().manual_seed(0)).shape
    torch.Size([4, 8])
    """

    mixup: bool = True
    shift: int = 0
    scale: float = 0.0
    noise: float = 0.0
    feature_std: np.ndarray | None = None
    image_shape: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.noise > 0 and self.feature_std is None:
            raise ValueError("Augmentation(noise > 0) needs feature_std, one value per feature")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Views of the rows of ``x``, drawn with ``generator`` (on the CPU)."""
        rows = len(x)
        if self.shift > 0:
            x = self._shifted(x, generator)
        if self.scale > 0:
            factor = 1 + self.scale * (2 * torch.rand(rows, 1, generator=generator) - 1)
            x = x * factor.to(x)
        if self.noise > 0:
            assert self.feature_std is not None  # checked in __post_init__
            std = torch.as_tensor(self.feature_std, dtype=x.dtype, device=x.device)
            x = x + self.noise * std * torch.randn(x.shape, generator=generator).to(x)
        if self.mixup and rows > 1:
            weight = torch.rand(rows, 1, generator=generator).to(x)
            partner = torch.randperm(rows, generator=generator).to(x.device)
            x = weight * x + (1 - weight) * x[partner]
        return x

    def _shifted(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Each row moved by its own random offset, the edge value filling the gap."""
        if self.image_shape is None:
            length = x.shape[1]
            offsets = torch.randint(-self.shift, self.shift + 1, (len(x), 1), generator=generator)
            source = (torch.arange(length) - offsets).clamp(0, length - 1).to(x.device)
            return torch.gather(x, 1, source)
        channels, height, width = self.image_shape
        images = x.reshape(len(x), channels, height, width)
        dy = torch.randint(-self.shift, self.shift + 1, (len(x), 1), generator=generator)
        dx = torch.randint(-self.shift, self.shift + 1, (len(x), 1), generator=generator)
        rows_index = (torch.arange(height) - dy).clamp(0, height - 1).to(x.device)
        cols_index = (torch.arange(width) - dx).clamp(0, width - 1).to(x.device)
        batch = torch.arange(len(x), device=x.device)[:, None, None]
        moved = images.permute(0, 2, 3, 1)[batch, rows_index[:, :, None], cols_index[:, None, :]]
        return moved.permute(0, 3, 1, 2).reshape(len(x), -1)


def augmentation_for(network: nn.Module, X: np.ndarray, kind: str | None = "auto") -> Any:
    """The :class:`Augmentation` for a student ``network`` trained on raw inputs ``X``.

    ``kind``: ``"auto"`` (shifts, scaling, noise and mixup for a signal or image network,
    mixup alone otherwise), ``"mixup"``, ``"signal"``, ``"image"``, or ``None`` (no
    augmentation: the student sees the training rows as they are).
    """
    if kind is None:
        return None
    image_shape = getattr(network, "input_shape", None)
    if kind == "auto":
        if image_shape is not None and len(image_shape) == 3:
            kind = "image"
        elif getattr(network, "input_kind", None) == "signal":
            kind = "signal"
        else:
            kind = "mixup"
    std = X.std(axis=0)
    if kind == "mixup":
        return Augmentation()
    if kind == "signal":
        shift = max(1, round(SIGNAL_SHIFT_FRACTION * X.shape[1]))
        return Augmentation(shift=shift, scale=SIGNAL_SCALE, noise=NOISE, feature_std=std)
    if kind == "image":
        if image_shape is None or len(image_shape) != 3:
            raise ValueError(
                "augment='image' needs a student network with an input_shape (channels, "
                "height, width), such as cnn2d"
            )
        shape = (int(image_shape[0]), int(image_shape[1]), int(image_shape[2]))
        shift = max(1, round(SIGNAL_SHIFT_FRACTION * max(shape[1:])))
        return Augmentation(shift=shift, noise=NOISE, feature_std=std, image_shape=shape)
    raise ValueError(f"augment must be 'auto', 'mixup', 'signal', 'image' or None; got {kind!r}")
