"""conv2d, max_pool2d and avg_pool2d: values against NumPy and torch.nn.functional,
type errors, and a gradient table by finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from tests.helpers import against_torch, assert_gradients, distinct, evaluate, functional, rand

# -- conv2d ------------------------------------------------------------------------------------

CONV_CASES = [
    # (x shape, w shape, keyword arguments)
    ((2, 3, 6, 6), (4, 3, 3, 3), {}),
    ((2, 3, 7, 6), (4, 3, 3, 2), {"stride": 2, "padding": 1}),
    ((1, 2, 7, 7), (3, 2, 3, 3), {"stride": (2, 1), "padding": (1, 2), "dilation": 2}),
    ((2, 4, 5, 5), (6, 2, 3, 3), {"groups": 2, "padding": "same"}),
    ((1, 4, 5, 5), (4, 1, 3, 3), {"groups": 4, "padding": "valid"}),
    ((1, 2, 6, 6), (2, 2, 2, 2), {"padding": "same"}),
    ((1, 2, 5, 5), (3, 2, 3, 3), {"padding": "same", "dilation": 2}),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("x_shape,w_shape,kwargs", CONV_CASES)
def test_conv2d_against_torch(x_shape, w_shape, kwargs):
    F = functional()
    against_torch(lambda x, w: gx.conv2d(x, w, **kwargs),
                  lambda x, w: F.conv2d(x, w, **kwargs), rand(*x_shape), rand(*w_shape))


def test_conv2d_with_bias_against_torch():
    F = functional()
    against_torch(lambda x, w, b: gx.conv2d(x, w, b, padding=1),
                  lambda x, w, b: F.conv2d(x, w, b, padding=1),
                  rand(2, 2, 4, 4), rand(3, 2, 3, 3), rand(3))


def test_conv2d_by_hand():
    # a 2x2 box filter over a 3x3 ramp: each output is the sum of a 2x2 window
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    out = evaluate(gx.conv2d, x, np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(out, [[[[8.0, 12.0], [20.0, 24.0]]]])


def test_conv2d_same_padding_with_stride_keeps_ceil_size():
    x = gx.input("x", (1, 1, 7, 7))
    assert gx.conv2d(x, gx.input("w", (1, 1, 3, 3)), stride=2, padding="same").shape == \
        (1, 1, 4, 4)


def test_conv2d_symbolic_batch():
    x = gx.input("x", ("batch", 2, 5, 5), "float64")
    w = gx.input("w", (3, 2, 3, 3), "float64")
    y = gx.conv2d(x, w, padding=1)
    assert y.shape == ("batch", 3, 5, 5)
    gw = gx.grad(gx.sum(y), w)
    a, b = rand(4, 2, 5, 5), rand(3, 2, 3, 3)
    value, grad_w = gx.compile([x, w], [y, gw])(a, b)
    assert value.shape == (4, 3, 5, 5)
    np.testing.assert_allclose(grad_w, gx.compile([x, w], gw)(a, b))
    one_by_one = gx.compile([x, w], gx.conv2d(x, w))(a[:1], b)
    np.testing.assert_allclose(one_by_one, evaluate(gx.conv2d, a[:1], b))


@pytest.mark.parametrize("x_shape,w_shape,kwargs,needle", [
    ((1, 3, 5, 5), (2, 2, 3, 3), {}, "input has 3 channels, but the weight of shape (2, 2, 3, 3)"),
    ((1, 3, 2, 2), (2, 3, 3, 3), {}, "kernel 3x3 (spanning 3x3 with dilation (1, 1)) is larger "
                                     "than the padded input 2x2"),
    ((1, 3, 5, 5), (2, 3, 3, 3), {"dilation": 3}, "spanning 7x7"),
    ((1, 4, 5, 5), (3, 2, 3, 3), {"groups": 2}, "groups=2 must divide"),
    ((3, 5, 5), (2, 3, 3, 3), {}, "input must be (N, C, H, W)"),
    ((1, 3, 5, 5), (2, 3, 3), {}, "weight must be"),
    ((1, 3, 5, 5), (2, 3, 3, 3), {"stride": 0}, "must be positive"),
    ((1, 3, 5, 5), (2, 3, 3, 3), {"padding": "full"}, "padding must be"),
])
def test_conv2d_type_errors(x_shape, w_shape, kwargs, needle):
    with pytest.raises(gx.GraphcTypeError, match="conv2d") as info:
        gx.conv2d(gx.input("x", x_shape), gx.input("w", w_shape), **kwargs)
    assert needle in str(info.value)


def test_conv2d_bias_mismatch():
    with pytest.raises(gx.GraphcTypeError, match=r"bias of shape \(3,\) does not match 2"):
        gx.conv2d(gx.input("x", (1, 1, 3, 3)), gx.input("w", (2, 1, 2, 2)), gx.input("b", 3))


# -- pooling -----------------------------------------------------------------------------------

POOL_CASES = [
    ((2, 2, 6, 6), {"kernel": 2}),
    ((1, 2, 7, 5), {"kernel": 3, "stride": 2, "padding": 1}),
    ((1, 1, 6, 6), {"kernel": (3, 2), "stride": (1, 2), "padding": (1, 0)}),
]


def _torch_pool_args(kwargs):
    return {("kernel_size" if k == "kernel" else k): v for k, v in kwargs.items()}


@pytest.mark.parametrize("shape,kwargs", POOL_CASES)
def test_max_pool2d_against_torch(shape, kwargs):
    F = functional()
    against_torch(lambda x: gx.max_pool2d(x, **kwargs),
                  lambda x: F.max_pool2d(x, **_torch_pool_args(kwargs)), distinct(*shape))


def test_max_pool2d_dilation_against_torch():
    F = functional()
    against_torch(lambda x: gx.max_pool2d(x, 2, 1, dilation=2),
                  lambda x: F.max_pool2d(x, 2, 1, dilation=2), distinct(1, 1, 5, 5))


@pytest.mark.parametrize("shape,kwargs", POOL_CASES)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d_against_torch(shape, kwargs, count_include_pad):
    F = functional()
    against_torch(lambda x: gx.avg_pool2d(x, **kwargs, count_include_pad=count_include_pad),
                  lambda x: F.avg_pool2d(x, **_torch_pool_args(kwargs),
                                         count_include_pad=count_include_pad), rand(*shape))


def test_pooling_by_hand():
    x = np.array([[[[1.0, 2.0, 0.0, 0.0],
                    [3.0, 4.0, 0.0, 8.0],
                    [5.0, 5.0, 1.0, 1.0],
                    [5.0, 5.0, 1.0, 1.0]]]])
    np.testing.assert_array_equal(evaluate(lambda t: gx.max_pool2d(t, 2), x),
                                  [[[[4.0, 8.0], [5.0, 1.0]]]])
    np.testing.assert_array_equal(evaluate(lambda t: gx.avg_pool2d(t, 2), x),
                                  [[[[2.5, 2.0], [5.0, 1.0]]]])
    # padding 1, 2x2 kernel, stride 2: windows over rows (1, 2) hold 2, 4 and 2 pixels
    padded = evaluate(lambda t: gx.avg_pool2d(t, 2, padding=1), x)
    np.testing.assert_array_equal(padded[0, 0, :2], [[0.25, 0.5, 0.0], [2.0, 2.5, 2.25]])
    unpadded = evaluate(lambda t: gx.avg_pool2d(t, 2, padding=1, count_include_pad=False), x)
    np.testing.assert_array_equal(unpadded[0, 0, :2], [[1.0, 1.0, 0.0], [4.0, 2.5, 4.5]])


def test_max_pool2d_gradient_goes_to_first_maximum_on_ties():
    x = gx.input("x", (1, 1, 2, 4), "float64")
    g = gx.grad(gx.sum(gx.max_pool2d(x, 2)), x)
    ties = np.array([[[[1.0, 1.0, 0.0, 2.0], [1.0, 1.0, 2.0, 2.0]]]])
    np.testing.assert_array_equal(gx.compile([x], g)(ties),
                                  [[[[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]]]])
    torch = pytest.importorskip("torch")
    t = torch.tensor(ties, requires_grad=True)
    torch.nn.functional.max_pool2d(t, 2).sum().backward()
    np.testing.assert_array_equal(gx.compile([x], g)(ties), t.grad.numpy())


@pytest.mark.parametrize("pool", [gx.max_pool2d, gx.avg_pool2d])
@pytest.mark.parametrize("shape,kwargs,needle", [
    ((1, 1, 4, 4), {"kernel": 2, "padding": 2}, "at most half the kernel"),
    ((1, 1, 2, 2), {"kernel": 3}, "larger than the padded input 2x2"),
    ((1, 4, 4), {"kernel": 2}, "input must be (N, C, H, W)"),
    ((1, 1, 4, 4), {"kernel": (2, 2, 2)}, "kernel must be an int or a pair"),
])
def test_pool_type_errors(pool, shape, kwargs, needle):
    with pytest.raises(gx.GraphcTypeError, match=pool.__name__) as info:
        pool(gx.input("x", shape), **kwargs)
    assert needle in str(info.value)


def test_pool_needs_float_input():
    with pytest.raises(gx.GraphcTypeError, match="needs a float input, got int32"):
        gx.max_pool2d(gx.input("x", (1, 1, 4, 4), "int32"), 2)


# -- gradients: one table, checked by finite differences ------------------------------------------

GRADIENTS = [
    # (id, function, input generators, order)
    ("conv2d", lambda x, w: gx.conv2d(x, w, stride=2, padding=1),
     [lambda: rand(1, 2, 5, 5), lambda: rand(2, 2, 3, 3)], 2),
    ("conv2d-groups-dilation", lambda x, w: gx.conv2d(x, w, groups=2, dilation=2, padding=1),
     [lambda: rand(1, 2, 4, 4), lambda: rand(2, 1, 2, 2)], 2),
    ("conv2d-bias", lambda x, w, b: gx.conv2d(x, w, b),
     [lambda: rand(2, 1, 3, 3), lambda: rand(2, 1, 2, 2), lambda: rand(2)], 2),
    ("conv2d-square", lambda x: gx.conv2d(x, x), [lambda: rand(1, 1, 3, 3)], 2),
    ("avg_pool2d", lambda x: gx.avg_pool2d(x, 3, 2, padding=1), [lambda: rand(1, 2, 5, 5)], 2),
    ("avg_pool2d-no-pad-count",
     lambda x: gx.avg_pool2d(x, 2, 1, padding=1, count_include_pad=False),
     [lambda: rand(1, 1, 3, 3)], 2),
    ("max_pool2d", lambda x: gx.max_pool2d(x, 3, 2, padding=1), [lambda: distinct(1, 2, 5, 5)], 1),
]


@pytest.mark.parametrize("f,makers,order", [pytest.param(f, m, o, id=name)
                                            for name, f, m, o in GRADIENTS])
def test_gradients(f, makers, order):
    assert_gradients(f, *(make() for make in makers), order=order)


def test_conv2d_third_order_through_the_input():
    w = rand(1, 1, 2, 2)
    assert_gradients(lambda x: gx.sum(gx.tanh(gx.conv2d(x, gx.constant(w)))),
                     rand(1, 1, 3, 3), order=3)

