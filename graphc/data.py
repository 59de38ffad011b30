"""Small datasets to train on: scikit-learn's bundled ones (no downloads) and synthetic ones.

Every loader returns a ``Dataset`` split into train and test parts, reproducibly from
``seed``; classification splits are stratified (each class keeps its proportion in both
parts). Features are float32, class labels int64, regression targets float32 columns.
Scaling statistics (mean, standard deviation) come from the training part only, so
nothing about the test part leaks into training.

    data = gx.data.digits()
    history = gx.train.fit(model, data.X_train, data.y_train, epochs=10)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphc.types import format_shape

__all__ = ["Dataset", "digits", "breast_cancer", "diabetes", "xor", "two_moons", "spirals",
           "sine", "standardize"]


@dataclass(frozen=True)
class Dataset:
    """A train/test split of one dataset.

    Attributes
    ----------
    X_train, y_train, X_test, y_test : np.ndarray
        Features (float32) and targets: int64 class labels, or float32 values.
    name : str
    n_classes : int or None
        The number of classes, or ``None`` for regression.
    description : str
        One line saying what the data is and how it was prepared.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str
    n_classes: int | None
    description: str

    def __repr__(self) -> str:
        train, test = (f"{format_shape(X.shape)} -> {format_shape(y.shape)}"
                       for X, y in ((self.X_train, self.y_train), (self.X_test, self.y_test)))
        return f"Dataset({self.name!r}, train {train}, test {test}, n_classes={self.n_classes})"


# -- scikit-learn's bundled datasets --------------------------------------------------------------

def digits(test_size: float = 0.2, seed: int = 0, images: bool = False) -> Dataset:
    """The 1,797 8×8 handwritten digits (UCI), 10 classes.

    Pixels are 0–16 gray levels, scaled to [0, 1] by dividing by 16. ``images=True``
    gives images of shape (N, 1, 8, 8) (one channel, for convolutions), else rows of 64.
    """
    from sklearn.datasets import load_digits

    raw = load_digits()
    X = (raw.data / 16.0).astype(np.float32)
    if images:
        X = X.reshape(-1, 1, 8, 8)
    X_train, X_test, y_train, y_test = _split(X, raw.target, test_size, seed, stratify=True)
    return Dataset(X_train, y_train, X_test, y_test, "digits", 10,
                   _describe("8×8 handwritten digits", X_train, X_test, 10,
                             "pixels scaled to [0, 1]"))


def breast_cancer(test_size: float = 0.2, seed: int = 0) -> Dataset:
    """The Wisconsin breast cancer data: 569 tumours, 30 features, malignant (0) or
    benign (1). Features are standardized with the training part's mean and std."""
    from sklearn.datasets import load_breast_cancer

    raw = load_breast_cancer()
    X_train, X_test, y_train, y_test = _split(raw.data, raw.target, test_size, seed,
                                              stratify=True)
    X_train, X_test = (a.astype(np.float32) for a in standardize(X_train, X_test))
    return Dataset(X_train, y_train, X_test, y_test, "breast_cancer", 2,
                   _describe("breast tumours (malignant 0, benign 1)", X_train, X_test, 2,
                             "features standardized with train statistics"))


def diabetes(test_size: float = 0.2, seed: int = 0) -> Dataset:
    """The diabetes regression data: 442 patients, 10 features, disease progression one
    year later. Features and target are standardized with the training part's statistics;
    the target is a float32 column of shape (N, 1)."""
    from sklearn.datasets import load_diabetes

    raw = load_diabetes()
    X_train, X_test, y_train, y_test = _split(raw.data, raw.target.reshape(-1, 1), test_size,
                                              seed, stratify=False)
    X_train, X_test = (a.astype(np.float32) for a in standardize(X_train, X_test))
    y_train, y_test = (a.astype(np.float32) for a in standardize(y_train, y_test))
    return Dataset(X_train, y_train, X_test, y_test, "diabetes", None,
                   _describe("diabetes progression (regression)", X_train, X_test, None,
                             "features and target standardized with train statistics"))


# -- synthetic datasets ---------------------------------------------------------------------------

def xor() -> Dataset:
    """The four rows of XOR: inputs in {0, 1}², label x₁ ⊕ x₂. Train and test are the
    same four rows (there is nothing else to test on)."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    return Dataset(X, y, X.copy(), y.copy(), "xor", 2,
                   _describe("x1 XOR x2", X, X, 2, "the same 4 rows for train and test"))


def two_moons(n: int = 500, noise: float = 0.1, seed: int = 0,
              test_size: float = 0.2) -> Dataset:
    """Two interleaving half circles (scikit-learn's ``make_moons``), ``n`` points in
    all, Gaussian noise of standard deviation ``noise``; 2 classes, not linearly
    separable."""
    from sklearn.datasets import make_moons

    _check_count("two_moons", "n", n, 2)
    X, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    X_train, X_test, y_train, y_test = _split(X.astype(np.float32), y, test_size, seed,
                                              stratify=True)
    return Dataset(X_train, y_train, X_test, y_test, "two_moons", 2,
                   _describe(f"two moons (noise {noise})", X_train, X_test, 2, "raw coordinates"))


def spirals(n_per_class: int = 200, classes: int = 2, noise: float = 0.1, seed: int = 0,
            test_size: float = 0.2) -> Dataset:
    """Interleaved spiral arms, one per class.

    Arm k is the curve r(s) = s, θ(s) = 2πk/K + 3π·s for s in [0, 1] (one and a half
    turns around the origin, arms rotated by 2π/K from one another), sampled at
    ``n_per_class`` evenly spaced s, with Gaussian noise of standard deviation
    ``noise`` added to each coordinate.
    """
    _check_count("spirals", "n_per_class", n_per_class, 2)
    _check_count("spirals", "classes", classes, 2)
    rng = np.random.default_rng(seed)
    s = np.linspace(0.0, 1.0, n_per_class)
    arms = []
    for k in range(classes):
        theta = 2 * np.pi * k / classes + 3 * np.pi * s
        arms.append(np.stack([s * np.cos(theta), s * np.sin(theta)], axis=1))
    X = np.concatenate(arms) + noise * rng.standard_normal((classes * n_per_class, 2))
    y = np.repeat(np.arange(classes), n_per_class)
    X_train, X_test, y_train, y_test = _split(X.astype(np.float32), y, test_size, seed,
                                              stratify=True)
    return Dataset(X_train, y_train, X_test, y_test, "spirals", classes,
                   _describe(f"{classes} spiral arms (noise {noise})", X_train, X_test,
                             classes, "raw coordinates"))


def sine(n: int = 256, low: float = 0.0, high: float = 2 * np.pi, seed: int = 0,
         test_size: float = 0.2) -> Dataset:
    """y = sin(x) at ``n`` points drawn uniformly from [low, high]: a smooth function
    for a network to approximate (regression; X and y are float32 columns (N, 1))."""
    _check_count("sine", "n", n, 2)
    if not high > low:
        raise ValueError(f"sine: high must be greater than low, got low={low}, high={high}")
    rng = np.random.default_rng(seed)
    X = rng.uniform(low, high, size=(n, 1)).astype(np.float32)
    y = np.sin(X)
    X_train, X_test, y_train, y_test = _split(X, y, test_size, seed, stratify=False)
    return Dataset(X_train, y_train, X_test, y_test, "sine", None,
                   _describe(f"y = sin(x), x uniform in [{low:.3g}, {high:.3g}]", X_train,
                             X_test, None, "raw values"))


# -- preparation ----------------------------------------------------------------------------------

def standardize(train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Scale every column to zero mean and unit variance with the *train* statistics.

    Returns ``(train_scaled, *others_scaled)``, always a tuple: every array is
    transformed as (a − mean_train) / std_train (scikit-learn's ``StandardScaler``; a
    column constant in ``train`` is only centred). Float dtypes are kept.
    """
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train)
    return tuple(scaler.transform(a) for a in (train, *others))


def _split(X: np.ndarray, y: np.ndarray, test_size: float, seed: int, *,
           stratify: bool) -> list[np.ndarray]:
    """Seeded train/test split (stratified by label when asked); labels become int64."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be a fraction in (0, 1), got {test_size!r}")
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=y if stratify else None)
    if stratify:
        y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    return [X_train, X_test, y_train, y_test]


def _check_count(loader: str, name: str, value: int, least: int) -> None:
    if not isinstance(value, int | np.integer) or value < least:
        raise ValueError(f"{loader}: {name} must be an int ≥ {least}, got {value!r}")


def _describe(what: str, X_train: np.ndarray, X_test: np.ndarray, n_classes: int | None,
              preparation: str) -> str:
    target = f"{n_classes} classes" if n_classes else "regression"
    each = X_train.shape[1:]
    features = (f"{each[0]} feature{'s' if each[0] != 1 else ''}" if len(each) == 1
                else "shape " + "×".join(str(d) for d in each))
    return (f"{what}: {len(X_train)} train / {len(X_test)} test examples, {features}, "
            f"{target}; {preparation}")
