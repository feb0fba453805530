import numpy as np
import pytest

from experiments.shift import CORRUPTIONS, OCCLUDE, corrupt, mnist1d_shifted

RNG = np.random.default_rng(0)
TABLE = RNG.normal(3.0, 2.0, size=(200, 6))
SIGNALS = RNG.normal(size=(50, 40))
IMAGES = RNG.uniform(size=(20, 64))


@pytest.mark.parametrize("kind", CORRUPTIONS)
@pytest.mark.parametrize("X, layout", [(TABLE, "tabular"), (SIGNALS, "signal"), (IMAGES, "image")])
def test_every_corruption_grows_with_severity_and_leaves_its_input_alone(kind, X, layout):
    before = X.copy()
    changes = []
    for severity in range(1, 6):
        out = corrupt(X, kind, severity, reference=X, layout=layout, random_state=0)
        assert out.shape == X.shape and np.isfinite(out).all()
        changes.append(np.abs(out - X).mean())
        again = corrupt(X, kind, severity, reference=X, layout=layout, random_state=0)
        np.testing.assert_array_equal(out, again)
    np.testing.assert_array_equal(X, before)
    assert changes[0] > 0 and changes[-1] > changes[0]
    if kind != "shift":  # a translation by more pixels need not move more mass
        assert all(b >= a for a, b in zip(changes, changes[1:], strict=False))


def test_units_are_the_reference_data_s():
    noisy = corrupt(TABLE, "noise", 5, reference=TABLE, random_state=0)
    # severity 5 adds one training standard deviation of noise per feature
    np.testing.assert_allclose((noisy - TABLE).std(axis=0), TABLE.std(axis=0), rtol=0.15)
    stretched = corrupt(TABLE, "scale", 5, reference=TABLE)
    np.testing.assert_allclose(stretched.std(axis=0), 2 * TABLE.std(axis=0))


def test_occlusion_covers_its_share():
    out = corrupt(SIGNALS, "occlusion", 3, reference=SIGNALS, layout="signal", random_state=0)
    covered = (out != SIGNALS).sum(axis=1)
    assert covered.max() == round(OCCLUDE[2] * SIGNALS.shape[1])


def test_image_translation_keeps_the_picture():
    image = np.zeros((1, 64))
    image[0, 3 * 8 + 3] = 1.0  # one bright pixel in the middle of an 8x8 image
    moved = corrupt(image, "shift", 5, reference=IMAGES, layout="image", random_state=1)
    assert moved.sum() == 1.0 and moved.max() == 1.0


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"kind": "blur"}, ValueError, "kind must be one of"),
        ({"severity": 6}, ValueError, "severity must be in 1..5"),
        ({"severity": 2.0}, TypeError, "severity must be an int"),
        ({"layout": "video"}, ValueError, "layout must be one of"),
        ({"layout": "image", "image_shape": (5, 5)}, ValueError, "does not hold the 6 features"),
        ({"reference": np.ones((3, 2))}, ValueError, "6 features of X"),
    ],
)
def test_bad_input(kwargs, error, match):
    arguments = {"kind": "noise", "severity": 1, "reference": TABLE, **kwargs}
    with pytest.raises(error, match=match):
        corrupt(TABLE, **arguments)


def test_mnist1d_drawn_with_harder_settings():
    X0, y0 = mnist1d_shifted(0, n_samples=300)
    assert X0.shape == (300, 40) and set(y0) <= set(range(10))
    distances = []
    for severity in (1, 3, 5):
        X, y = mnist1d_shifted(severity, n_samples=300)
        # the same draws of the generator (same digits), moved further from the clean ones
        np.testing.assert_array_equal(y, y0)
        distances.append(np.abs(X - X0).mean())
    assert 0 < distances[0] < distances[1] < distances[2]
    with pytest.raises(ValueError, match="severity must be an int in 0..5"):
        mnist1d_shifted(7)
