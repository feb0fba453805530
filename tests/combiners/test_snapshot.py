import numpy as np
import pytest

from combiners import SnapshotCombiner


def test_last_snapshots_with_weights():
    predictions = np.stack([np.full((2, 1), v) for v in (0.0, 1.0, 2.0, 3.0)])
    np.testing.assert_allclose(SnapshotCombiner().fit(predictions).combine(predictions), 1.5)
    last_two = SnapshotCombiner(n_last=2).fit(predictions)
    np.testing.assert_allclose(last_two.weights_, [0, 0, 0.5, 0.5])
    weighted = SnapshotCombiner(n_last=2, weights=[1, 3]).fit(predictions)
    np.testing.assert_allclose(weighted.combine(predictions), 0.25 * 2 + 0.75 * 3)
    assert not weighted.learns


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_last": 0}, r"'n_last' parameter of SnapshotCombiner .* \[1, inf\) or None\. Got 0"),
        ({"n_last": 4}, r"n_last must be an int in \[1, 3\]; got 4"),
        ({"n_last": 2, "weights": [1.0]}, r"got 1 weights for 2 members"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        SnapshotCombiner(**params).fit(np.ones((3, 2, 1)))
