"""The views function matching trains on (members/augment.py)."""

import numpy as np
import pytest
import torch

from members.augment import Augmentation, augmentation_for
from members.registry import build_backbone


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def test_a_signal_moves_by_at_most_shift_and_the_edge_fills_the_gap():
    signal = torch.zeros(200, 20)
    signal[:, 10] = 1.0  # an impulse in the middle
    signal[:, 0] = 5.0  # an edge value
    moved = Augmentation(mixup=False, shift=3)(signal, generator())
    peaks = moved[:, 5:15].argmax(dim=1) + 5
    assert set((peaks - 10).tolist()) == {-3, -2, -1, 0, 1, 2, 3}  # every offset is drawn
    shifted_right = (peaks > 10).nonzero().flatten()
    # moved right by k: the first k positions repeat the edge value
    row = int(shifted_right[0])
    k = int(peaks[row] - 10)
    assert torch.all(moved[row, : k + 1] == 5.0)


def test_an_image_moves_in_both_directions():
    image = torch.zeros(100, 1, 6, 6)
    image[:, 0, 3, 3] = 1.0
    moved = Augmentation(mixup=False, shift=1, image_shape=(1, 6, 6))(
        image.reshape(100, -1), generator()
    )
    where = moved.reshape(100, 6, 6).flatten(1).argmax(dim=1)
    rows, cols = where // 6, where % 6
    assert set(rows.tolist()) == {2, 3, 4} and set(cols.tolist()) == {2, 3, 4}
    assert torch.all(moved.sum(dim=1) == 1.0)  # nothing lost inside the frame


def test_scale_noise_and_mixup_stay_in_their_ranges():
    x = torch.ones(500, 4)
    scaled = Augmentation(mixup=False, scale=0.1)(x, generator())
    assert scaled.min() >= 0.9 and scaled.max() <= 1.1
    assert torch.allclose(scaled, scaled[:, :1].expand_as(scaled))  # one factor per row
    std = np.array([1.0, 2.0, 0.0, 4.0])
    noisy = Augmentation(mixup=False, noise=0.5, feature_std=std)(torch.zeros(4000, 4), generator())
    np.testing.assert_allclose(noisy.std(dim=0).numpy(), 0.5 * std, rtol=0.05)
    # mixup: every view lies between two rows of the batch
    rows = torch.tensor([[0.0], [10.0]]).repeat(50, 1)
    mixed = Augmentation()(rows, generator())
    assert mixed.min() >= 0 and mixed.max() <= 10 and len(torch.unique(mixed)) > 20


def test_views_follow_the_generator():
    x = torch.randn(32, 40)
    views = Augmentation(shift=2, scale=0.1, noise=0.1, feature_std=np.ones(40))
    torch.testing.assert_close(views(x, generator(1)), views(x, generator(1)))
    assert not torch.equal(views(x, generator(1)), views(x, generator(2)))


def test_auto_picks_views_from_the_network():
    X = np.random.RandomState(0).randn(10, 64)
    signal = augmentation_for(build_backbone("cnn1d", 64, 3), X)
    assert signal.shift == 3 and signal.scale > 0 and signal.noise > 0 and signal.mixup
    image = augmentation_for(build_backbone("cnn2d", 64, 3), X)
    assert image.image_shape == (1, 8, 8) and image.shift >= 1 and image.mixup
    tabular = augmentation_for(build_backbone("mlp", 64, 3), X)
    assert tabular == Augmentation()  # mixup alone
    assert augmentation_for(build_backbone("mlp", 64, 3), X, None) is None


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: Augmentation(noise=0.1), r"noise > 0\) needs feature_std"),
        (
            lambda: augmentation_for(build_backbone("mlp", 4, 2), np.zeros((3, 4)), "image"),
            r"augment='image' needs a student network with an input_shape",
        ),
        (
            lambda: augmentation_for(build_backbone("mlp", 4, 2), np.zeros((3, 4)), "rotate"),
            r"augment must be 'auto', 'mixup', 'signal', 'image' or None; got 'rotate'",
        ),
    ],
)
def test_bad_augmentations(call, match):
    with pytest.raises(ValueError, match=match):
        call()
