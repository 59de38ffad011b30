"""graphc.data: shapes, dtypes, stratified and reproducible splits, scaling statistics."""

from __future__ import annotations

import numpy as np
import pytest

from graphc import data

# loader, kwargs, (n_train, n_test), example shape, n_classes, target shape per example
LOADERS = [
    (data.digits, {}, (1437, 360), (64,), 10, ()),
    (data.digits, {"images": True}, (1437, 360), (1, 8, 8), 10, ()),
    (data.breast_cancer, {}, (455, 114), (30,), 2, ()),
    (data.diabetes, {}, (353, 89), (10,), None, (1,)),
    (data.xor, {}, (4, 4), (2,), 2, ()),
    (data.two_moons, {"n": 100}, (80, 20), (2,), 2, ()),
    (data.spirals, {"n_per_class": 50, "classes": 3}, (120, 30), (2,), 3, ()),
    (data.sine, {"n": 100}, (80, 20), (1,), None, (1,)),
]


@pytest.mark.parametrize("loader, kwargs, sizes, example, n_classes, target", LOADERS)
def test_shapes_and_dtypes(loader, kwargs, sizes, example, n_classes, target):
    d = loader(**kwargs)
    assert (len(d.X_train), len(d.X_test)) == sizes
    assert d.X_train.shape[1:] == d.X_test.shape[1:] == example
    assert d.y_train.shape == (sizes[0], *target) and d.y_test.shape == (sizes[1], *target)
    assert d.X_train.dtype == d.X_test.dtype == np.float32
    assert d.n_classes == n_classes
    if n_classes is None:
        assert d.y_train.dtype == np.float32
    else:
        assert d.y_train.dtype == d.y_test.dtype == np.int64
        assert set(np.unique(d.y_train)) == set(range(n_classes))
    assert d.name in repr(d) and f"{sizes[0]} train / {sizes[1]} test" in d.description


@pytest.mark.parametrize("loader, kwargs", [(data.digits, {}), (data.breast_cancer, {}),
                                            (data.two_moons, {"n": 200}),
                                            (data.spirals, {"n_per_class": 60, "classes": 3})])
def test_classification_splits_are_stratified(loader, kwargs):
    d = loader(**kwargs)
    everything = np.concatenate([d.y_train, d.y_test])
    overall = np.bincount(everything) / len(everything)
    for part in (d.y_train, d.y_test):
        # stratification keeps each class's share within one example of the overall share
        np.testing.assert_allclose(np.bincount(part, minlength=d.n_classes) / len(part),
                                   overall, atol=1.0 / len(part) + 1e-12)


@pytest.mark.parametrize("loader, kwargs", [(data.digits, {}), (data.diabetes, {}),
                                            (data.two_moons, {"n": 100}),
                                            (data.spirals, {"n_per_class": 30}),
                                            (data.sine, {"n": 50})])
def test_reproducible_by_seed(loader, kwargs):
    a, b, c = loader(seed=3, **kwargs), loader(seed=3, **kwargs), loader(seed=4, **kwargs)
    for name in ("X_train", "y_train", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.X_train, c.X_train)


def test_digits_pixels_scaled_to_unit_interval():
    d = data.digits()
    assert d.X_train.min() == 0.0 and d.X_train.max() == 1.0
    # gray levels are 0..16, so every pixel is a multiple of 1/16
    np.testing.assert_array_equal(d.X_train * 16, np.round(d.X_train * 16))
    images = data.digits(images=True)
    np.testing.assert_array_equal(images.X_train.reshape(len(images.X_train), 64), d.X_train)


@pytest.mark.parametrize("loader", [data.breast_cancer, data.diabetes])
def test_standardized_with_train_statistics(loader):
    d = loader()
    np.testing.assert_allclose(d.X_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(d.X_train.std(axis=0), 1, atol=1e-4)
    # the test part is scaled with the train statistics, so it is only roughly standard
    assert np.abs(d.X_test.mean(axis=0)).max() > 1e-3
    if d.n_classes is None:
        np.testing.assert_allclose([d.y_train.mean(), d.y_train.std()], [0, 1], atol=1e-4)


def test_standardize_uses_train_mean_and_std():
    train = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    other = np.array([[7.0, 12.0]])
    scaled_train, scaled_other = data.standardize(train, other)
    std = np.sqrt(8 / 3)  # population std of 1, 3, 5
    np.testing.assert_allclose(scaled_train[:, 0], [-2 / std, 0, 2 / std])
    # a constant column is only centred (its std counts as 1)
    np.testing.assert_allclose(scaled_train[:, 1], 0)
    np.testing.assert_allclose(scaled_other, [[4 / std, 2.0]])
    (alone,) = data.standardize(train)
    np.testing.assert_array_equal(alone, scaled_train)


def test_xor_rows():
    d = data.xor()
    np.testing.assert_array_equal(d.X_train, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(d.y_train, [0, 1, 1, 0])


def test_sine_targets_and_range():
    d = data.sine(n=200, low=-1.0, high=2.0)
    np.testing.assert_allclose(d.y_train, np.sin(d.X_train), rtol=1e-6)
    assert d.X_train.min() >= -1.0 and d.X_train.max() <= 2.0


def test_spirals_arms_follow_their_curve():
    d = data.spirals(n_per_class=100, classes=2, noise=0.0)
    X = np.concatenate([d.X_train, d.X_test])
    y = np.concatenate([d.y_train, d.y_test])
    # without noise, a point at radius r on arm k has angle 2πk/K + 3πr (mod 2π)
    r = np.linalg.norm(X, axis=1)
    angle = np.arctan2(X[:, 1], X[:, 0])
    expected = np.pi * y + 3 * np.pi * r
    keep = r > 1e-6
    np.testing.assert_allclose(np.cos(angle[keep] - expected[keep]), 1, atol=1e-5)


@pytest.mark.parametrize("call, message", [
    (lambda: data.digits(test_size=1.5), "test_size must be a fraction"),
    (lambda: data.two_moons(n=1), "n must be an int ≥ 2"),
    (lambda: data.spirals(classes=1), "classes must be an int ≥ 2"),
    (lambda: data.sine(low=1.0, high=0.0), "high must be greater than low"),
])
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
