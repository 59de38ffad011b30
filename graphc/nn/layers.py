"""The layers of ``graphc.nn``: each builds its params on first call and graph nodes on
every call (see ``graphc.nn.module``).

Layouts follow PyTorch: images are NCHW, convolution weights (out, in/groups, kh, kw),
dense weights (in, out). The batch dim may be symbolic (``"batch"``); every other dim a
layer owns params for must be fixed when it is built, and later calls must agree with it.

Layers that draw random numbers (``Dropout``, ``DropConnect``, ``RReLU``) take their
key from the model's seed and their scope path, so a model built twice draws the same
masks, and two dropout layers never share one.
"""

from __future__ import annotations

import inspect
import math
import re
import zlib
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import graphc as gx
from graphc.nn import init as initializers
from graphc.nn.module import Layer, float_dtype, register_state_updates
from graphc.ops.activations import ACTIVATIONS
from graphc.ops.dense import DENSE_ACTIVATIONS
from graphc.ops.elementwise import Elementwise
from graphc.tensor import Tensor
from graphc.types import Shape, TensorType, format_shape

# -- helpers shared by the layers -------------------------------------------------------------


def _where(layer: Layer) -> str:
    """How errors name a layer: ``Conv2d 'conv2d_1'``."""
    return f"{type(layer).__name__} {layer.name!r}"


def _require(layer: Layer, ok: bool, wanted: str, shape: Shape) -> None:
    """Raise a ValueError naming the layer, what it wanted and the input shape it got."""
    if not ok:
        raise ValueError(f"{_where(layer)}: {wanted}, got input of shape {format_shape(shape)}")


def _features(layer: Layer, input_type: TensorType) -> int:
    """The fixed last dim of ``input_type``: the features a fully connected layer is
    built for."""
    _require(layer, input_type.ndim >= 1 and isinstance(input_type.shape[-1], int),
             "needs input of shape (..., features) with a fixed last dim", input_type.shape)
    return input_type.shape[-1]


def _check_features(layer: Layer, x: Tensor, weight: Tensor) -> None:
    """``x`` has the features ``weight`` (shape (in, out)) was built for."""
    features = weight.shape[0]
    _require(layer, x.ndim >= 1 and x.shape[-1] == features,
             f"was built for input of {features} features ({weight.name.rsplit('/', 1)[-1]} "
             f"of shape {format_shape(weight.shape)})", x.shape)


def _positive_int(value: Any, what: str, layer: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{layer}: {what} must be a positive int, got {value!r}")
    return value


def _pair(value: Any, what: str, layer: str) -> tuple[int, int]:
    """An int or a pair of positive ints, as a pair."""
    pair = (value, value) if isinstance(value, int) else tuple(value) \
        if isinstance(value, Sequence) and not isinstance(value, str) else None
    if pair is None or len(pair) != 2:
        raise ValueError(f"{layer}: {what} must be an int or a pair of ints, got {value!r}")
    return (_positive_int(pair[0], what, layer), _positive_int(pair[1], what, layer))


def _probability(p: Any, layer: str) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{layer}: p must be a probability in [0, 1], got {p!r}")
    return float(p)


def _random_key(layer: Layer, salt: str = "") -> int:
    """A key for the layer's random draws, from the model's seed and the layer's scope
    path: reproducible, and distinct between layers (a CRC-32, so below 2**32)."""
    return zlib.crc32(f"{layer.seed}:{layer.path}:{salt}".encode())


# -- activations as callables: resolution, parameter checks -----------------------------------

#: Everything a layer accepts as an activation by name: the elementwise registry, and the
#: normalizations over an axis.
FUNCTIONS: dict[str, Callable[..., Tensor]] = {
    **ACTIVATIONS, "softmax": gx.softmax, "log_softmax": gx.log_softmax}

#: Arguments a layer supplies itself at each call, never its constructor.
_CALL_ARGS = ("training", "key")


def _signature(function: Callable[..., Tensor]) -> inspect.Signature:
    """The function's signature; an elementwise primitive (``gx.tanh``) is ``f(x)``."""
    if isinstance(function, Elementwise):
        x = inspect.Parameter("x", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return inspect.Signature([x])
    return inspect.signature(function)


class _Activator:
    """An activation function with its parameters bound: ``act(z, training, key)``.

    ``training`` and ``key`` reach the function only if it takes them (``rrelu``).
    """

    def __init__(self, activation: str | Callable[..., Tensor], args: tuple, params: dict,
                 where: str) -> None:
        if isinstance(activation, str):
            if activation not in FUNCTIONS:
                raise ValueError(f"{where}: unknown activation {activation!r}; known: "
                                 f"{', '.join(FUNCTIONS)}")
            self.name, self.function = activation, FUNCTIONS[activation]
        elif callable(activation):
            spelled = getattr(activation, "__name__", type(activation).__name__)
            self.name = re.sub(r"\W+", "_", spelled).strip("_").lower() or "activation"
            self.function = activation
        else:
            raise TypeError(f"{where}: an activation is a name or a function, got "
                            f"{activation!r}")
        signature = _signature(self.function)
        taken = [k for k in _CALL_ARGS if k in params]
        if taken:
            raise TypeError(f"{where}: {taken[0]!r} is set by the layer at each call, "
                            "not in its constructor")
        try:
            bound = signature.bind(None, *args, **params)
        except TypeError as e:
            accepted = [p for p in list(signature.parameters)[1:] if p not in _CALL_ARGS]
            raise TypeError(f"{where}: bad arguments for {self.name} ({e}); it takes "
                            f"{', '.join(accepted) or 'no parameters'}") from None
        self.params = dict(list(bound.arguments.items())[1:])
        self.takes = {k: k in signature.parameters for k in _CALL_ARGS}
        if self.name in ACTIVATIONS and self.function is ACTIVATIONS[self.name]:
            self._check_values(where)

    def _check_values(self, where: str) -> None:
        """Apply the function once to a scalar, so bad values (``approximate="cubic"``)
        fail where the layer is made, not at its first call."""
        try:
            self(gx.constant(0.0, "float32"), training=False, key=0)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {self.name} refuses {self.params}: {e}") from None

    def __call__(self, z: Tensor, training: bool, key: int) -> Tensor:
        extra = {"training": training, "key": key}
        return self.function(z, **self.params, **{k: extra[k] for k, t in self.takes.items()
                                                   if t})

    def after_dense(self, x: Tensor, W: Tensor, b: Tensor | None, training: bool,
                    key: int) -> Tensor:
        """``act(x @ W + b)``: one ``dense`` node when the activation is one elementwise
        op it can fuse, else the activation applied to the dense node."""
        if self.name in DENSE_ACTIVATIONS and self.function is FUNCTIONS.get(self.name):
            return gx.dense(x, W, b, self.name, **self.params)
        return self(gx.dense(x, W, b), training, key)


def _activator(activation: Any, params: dict, where: str) -> _Activator | None:
    """The bound activation of a layer's ``activation=`` argument (None: linear)."""
    if activation is None:
        if params:
            raise TypeError(f"{where}: activation parameters {params} given without an "
                            "activation")
        return None
    return _Activator(activation, (), params, where)


def _activate(activator: _Activator | None, layer: Layer, z: Tensor, training: bool) -> Tensor:
    return z if activator is None else activator(z, training, _random_key(layer, "activation"))


def _dense_activate(activator: _Activator | None, layer: Layer, x: Tensor, W: Tensor,
                    b: Tensor | None, training: bool) -> Tensor:
    """``act(x @ W + b)`` (``x @ W + b`` without an activation), fused where it can be."""
    if activator is None:
        return gx.dense(x, W, b)
    return activator.after_dense(x, W, b, training, _random_key(layer, "activation"))


# -- fully connected --------------------------------------------------------------------------


class Dense(Layer):
    """A fully connected layer, ``activation(x @ W + b)``: a layer of the neurons
    a(x, w) = σ(Σ wⱼxⱼ − w₀), whose thresholds w₀ are the negated biases ``−b``.

    Parameters
    ----------
    units : int
        Number of neurons (output features).
    activation : str or callable, optional
        An activation by name (``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"softmax"``, ...;
        the elementwise ones fuse into the ``dense`` node) or a function of a tensor.
    use_bias : bool
    kernel_init, bias_init : str or initializer
        ``W`` (shape (in, units)) and ``b`` (shape (units,)); Glorot uniform and zeros
        by default, as Keras.
    **activation_params
        Passed to the activation (``alpha=0.2`` for ``"leaky_relu"``).
    """

    def __init__(self, units: int, activation: str | Callable[..., Tensor] | None = None, *,
                 use_bias: bool = True, kernel_init: Any = "xavier_uniform",
                 bias_init: Any = "zeros", name: str | None = None,
                 **activation_params: Any) -> None:
        super().__init__(name)
        where = type(self).__name__
        self.units = _positive_int(units, "units", where)
        self.activation, self.use_bias = activation, use_bias
        self.kernel_init, self.bias_init = kernel_init, bias_init
        self.activation_params = activation_params
        self._activator = _activator(activation, activation_params, where)

    def build(self, input_type: TensorType) -> None:
        dtype = float_dtype(input_type)
        self.W = self.add_param("W", (_features(self, input_type), self.units),
                                self.kernel_init, dtype=dtype)
        self.b = self.add_param("b", (self.units,), self.bias_init, dtype=dtype) \
            if self.use_bias else None

    def _weight(self, training: bool) -> Tensor:
        """The kernel the forward pass multiplies by (``DropConnect`` drops from it)."""
        return self.W

    def forward(self, x: Tensor, training: bool) -> Tensor:
        _check_features(self, x, self.W)
        return _dense_activate(self._activator, self, x, self._weight(training), self.b, training)


Linear = Dense


class DropConnect(Dense):
    """A dense layer whose weights are dropped at random in training (Wan et al., 2013):
    ``activation(x @ (M ⊙ W) / (1 − p) + b)``, each entry of the mask M ~ Bernoulli(1 − p),
    drawn afresh at every compiled call; ``activation(x @ W + b)`` when not training.

    Parameters
    ----------
    units : int
    p : float
        The probability of dropping each weight.
    activation, use_bias, kernel_init, bias_init, **activation_params
        As ``Dense``.
    """

    def __init__(self, units: int, p: float = 0.5,
                 activation: str | Callable[..., Tensor] | None = None, **options: Any) -> None:
        super().__init__(units, activation, **options)
        self.p = _probability(p, type(self).__name__)

    def _weight(self, training: bool) -> Tensor:
        return gx.dropconnect(self.W, self.p, training, key=_random_key(self))


class Maxout(Layer):
    """Maxout units (Goodfellow et al., 2013): each of ``units`` outputs is the maximum
    of ``pieces`` affine functions of the input,
    ``y_i = max_{j < pieces} (x W + b)_{i·pieces + j}``.

    Parameters
    ----------
    units : int
    pieces : int
        Affine pieces per unit (``W`` has shape (in, units·pieces)).
    use_bias : bool
    kernel_init, bias_init : str or initializer
    """

    def __init__(self, units: int, pieces: int = 2, *, use_bias: bool = True,
                 kernel_init: Any = "xavier_uniform", bias_init: Any = "zeros",
                 name: str | None = None) -> None:
        super().__init__(name)
        self.units = _positive_int(units, "units", "Maxout")
        self.pieces = _positive_int(pieces, "pieces", "Maxout")
        self.use_bias, self.kernel_init, self.bias_init = use_bias, kernel_init, bias_init

    def build(self, input_type: TensorType) -> None:
        dtype, width = float_dtype(input_type), self.units * self.pieces
        self.W = self.add_param("W", (_features(self, input_type), width), self.kernel_init,
                                dtype=dtype)
        self.b = self.add_param("b", (width,), self.bias_init, dtype=dtype) \
            if self.use_bias else None

    def forward(self, x: Tensor, training: bool) -> Tensor:
        _check_features(self, x, self.W)
        return gx.maxout(gx.dense(x, self.W, self.b), self.pieces)


class Highway(Layer):
    """A highway layer (Srivastava et al., 2015): a gate T chooses, per feature, between
    transforming the input and carrying it through unchanged,

        y = T ⊙ H(x) + (1 − T) ⊙ x,   H = act(x W_H + b_H),   T = σ(x W_T + b_T),

    computed as x + T ⊙ (H − x). The output has the input's shape (..., d).

    Parameters
    ----------
    activation : str or callable, optional
        The transform's activation (None: H is affine).
    gate_bias_init : float
        The initial b_T; negative biases the layer towards carrying x (T ≈ σ(−1) ≈ 0.27
        at the default), which lets deep stacks train.
    kernel_init, bias_init : str or initializer
        W_H and W_T (shape (d, d)), and b_H.
    **activation_params
        Passed to the activation.
    """

    def __init__(self, activation: str | Callable[..., Tensor] | None = "relu",
                 gate_bias_init: float = -1.0, *, kernel_init: Any = "xavier_uniform",
                 bias_init: Any = "zeros", name: str | None = None,
                 **activation_params: Any) -> None:
        super().__init__(name)
        self.activation, self.gate_bias_init = activation, float(gate_bias_init)
        self.kernel_init, self.bias_init = kernel_init, bias_init
        self._activator = _activator(activation, activation_params, "Highway")

    def build(self, input_type: TensorType) -> None:
        d, dtype = _features(self, input_type), float_dtype(input_type)
        self.W_H = self.add_param("W_H", (d, d), self.kernel_init, dtype=dtype)
        self.b_H = self.add_param("b_H", (d,), self.bias_init, dtype=dtype)
        self.W_T = self.add_param("W_T", (d, d), self.kernel_init, dtype=dtype)
        self.b_T = self.add_param("b_T", (d,), initializers.constant(self.gate_bias_init),
                                  dtype=dtype)

    def forward(self, x: Tensor, training: bool) -> Tensor:
        _check_features(self, x, self.W_H)
        h = _dense_activate(self._activator, self, x, self.W_H, self.b_H, training)
        t = gx.dense(x, self.W_T, self.b_T, "sigmoid")
        return x + t * (h - x)


# -- convolution and pooling ------------------------------------------------------------------


class Conv2d(Layer):
    """A 2-D convolution over NCHW input (cross-correlation, as torch):

        y[n, o, h, w] = act(b[o] + Σ_{c, i, j} W[o, c, i, j] · x_pad[n, c, s·h + d·i, s·w + d·j])

    with c running over the input channels of o's group, stride s, dilation d and zero
    padding; ``groups`` splits the channels into groups convolved separately.

    Parameters
    ----------
    out_channels : int
    kernel_size : int or (int, int)
    stride, dilation : int or (int, int)
    padding : int, (int, int), ((top, bottom), (left, right)), "same" or "valid"
    groups : int
        Must divide the input channels and ``out_channels``; the weight has shape
        (out_channels, in_channels / groups, kh, kw).
    activation : str or callable, optional
    use_bias : bool
    kernel_init, bias_init : str or initializer
        Fans are read from the weight's shape (``init.fans``).
    **activation_params
        Passed to the activation.
    """

    def __init__(self, out_channels: int, kernel_size: int | tuple[int, int], stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1,
                 activation: str | Callable[..., Tensor] | None = None, *,
                 use_bias: bool = True, kernel_init: Any = "xavier_uniform",
                 bias_init: Any = "zeros", name: str | None = None,
                 **activation_params: Any) -> None:
        super().__init__(name)
        self.out_channels = _positive_int(out_channels, "out_channels", "Conv2d")
        self.kernel_size = _pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = _pair(stride, "stride", "Conv2d")
        self.dilation = _pair(dilation, "dilation", "Conv2d")
        self.groups = _positive_int(groups, "groups", "Conv2d")
        if out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide out_channels={out_channels}")
        self.padding, self.activation, self.use_bias = padding, activation, use_bias
        self.kernel_init, self.bias_init = kernel_init, bias_init
        self._activator = _activator(activation, activation_params, "Conv2d")

    def build(self, input_type: TensorType) -> None:
        shape = input_type.shape
        _require(self, input_type.ndim == 4 and isinstance(shape[1], int),
                 "needs input of shape (N, C, H, W) with a fixed C", shape)
        _require(self, shape[1] % self.groups == 0,
                 f"groups={self.groups} must divide the input channels", shape)
        dtype = float_dtype(input_type)
        self.W = self.add_param("W", (self.out_channels, shape[1] // self.groups,
                                      *self.kernel_size), self.kernel_init, dtype=dtype)
        self.b = self.add_param("b", (self.out_channels,), self.bias_init, dtype=dtype) \
            if self.use_bias else None

    def forward(self, x: Tensor, training: bool) -> Tensor:
        channels = self.W.shape[1] * self.groups
        _require(self, x.ndim == 4 and x.shape[1] == channels,
                 f"was built for (N, {channels}, H, W) input", x.shape)
        y = gx.conv2d(x, self.W, self.b, self.stride, self.padding, self.dilation, self.groups)
        return _activate(self._activator, self, y, training)


class MaxPool2d(Layer):
    """Max pooling of NCHW input: y[n, c, h, w] = max over the (kh, kw) window at
    (s·h, s·w) of the (−∞-padded) input.

    Parameters
    ----------
    kernel : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel`` (windows side by side).
    padding : int, (int, int), "same" or "valid"
        At most half the kernel on each side.
    dilation : int or (int, int)
    """

    def __init__(self, kernel: int | tuple[int, int], stride: Any = None, padding: Any = 0,
                 dilation: Any = 1, *, name: str | None = None) -> None:
        super().__init__(name)
        self.kernel = _pair(kernel, "kernel", "MaxPool2d")
        self.stride = self.kernel if stride is None else _pair(stride, "stride", "MaxPool2d")
        self.dilation = _pair(dilation, "dilation", "MaxPool2d")
        self.padding = padding

    def forward(self, x: Tensor, training: bool) -> Tensor:
        return gx.max_pool2d(x, self.kernel, self.stride, self.padding, self.dilation)


class AvgPool2d(Layer):
    """Average pooling of NCHW input: y[n, c, h, w] = the mean of the (kh, kw) window at
    (s·h, s·w) of the zero-padded input.

    Parameters
    ----------
    kernel : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel``.
    padding : int, (int, int), "same" or "valid"
        At most half the kernel on each side.
    count_include_pad : bool
        Divide by kh·kw even where the window covers padding (torch's default), or only
        by the number of input pixels in it.
    """

    def __init__(self, kernel: int | tuple[int, int], stride: Any = None, padding: Any = 0,
                 count_include_pad: bool = True, *, name: str | None = None) -> None:
        super().__init__(name)
        self.kernel = _pair(kernel, "kernel", "AvgPool2d")
        self.stride = self.kernel if stride is None else _pair(stride, "stride", "AvgPool2d")
        self.padding, self.count_include_pad = padding, bool(count_include_pad)

    def forward(self, x: Tensor, training: bool) -> Tensor:
        return gx.avg_pool2d(x, self.kernel, self.stride, self.padding, self.count_include_pad)


class Flatten(Layer):
    """(N, d₁, ..., d_k) → (N, d₁·…·d_k): keeps the (possibly symbolic) batch axis 0 and
    flattens the rest, which must be fixed, into one dim (C-order, as ``torch.flatten``)."""

    def forward(self, x: Tensor, training: bool) -> Tensor:
        rest = x.shape[1:]
        _require(self, x.ndim >= 2 and all(isinstance(d, int) for d in rest),
                 "needs input of shape (N, ...) with fixed dims after the first", x.shape)
        return gx.reshape(x, (x.shape[0], math.prod(rest)))


# -- normalization ----------------------------------------------------------------------------


class BatchNorm(Layer):
    """Batch normalization (Ioffe & Szegedy, 2015) over channel axis 1 of (N, C) or
    (N, C, ...) input:

        y = (x − μ) / √(σ² + eps) · γ + β,

    with μ, σ² each channel's mean and biased variance over the batch (and spatial) axes
    when training, and the running statistics at inference. Training also computes

        running_mean ← (1 − momentum) · running_mean + momentum · μ
        running_var  ← (1 − momentum) · running_var  + momentum · σ²·n/(n − 1)

    (the unbiased variance, as torch), registered as state updates of the output: compile
    the step with ``updates={**opt.minimize(loss, params), **nn.state_updates(loss)}``.
    A batch with one value per channel (n = 1) leaves the running statistics unchanged.

    Parameters
    ----------
    momentum : float
        The weight of the batch in the running statistics, in [0, 1].
    eps : float
        Added to the variance, > 0.

    Params: ``gamma`` (ones) and ``beta`` (zeros), trainable; ``running_mean`` (zeros)
    and ``running_var`` (ones), non-trainable state; each of shape (C,).
    """

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5, *,
                 name: str | None = None) -> None:
        super().__init__(name)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNorm: momentum must be in [0, 1], got {momentum!r}")
        if not eps > 0:
            raise ValueError(f"BatchNorm: eps must be > 0, got {eps!r}")
        self.momentum, self.eps = float(momentum), float(eps)

    def build(self, input_type: TensorType) -> None:
        shape = input_type.shape
        _require(self, input_type.ndim >= 2 and isinstance(shape[1], int),
                 "needs input of shape (N, C, ...) with a fixed C", shape)
        c, dtype = shape[1], float_dtype(input_type)
        self.gamma = self.add_param("gamma", (c,), "ones", dtype=dtype)
        self.beta = self.add_param("beta", (c,), "zeros", dtype=dtype)
        self.running_mean = self.add_param("running_mean", (c,), "zeros", dtype=dtype,
                                           trainable=False)
        self.running_var = self.add_param("running_var", (c,), "ones", dtype=dtype,
                                          trainable=False)

    def forward(self, x: Tensor, training: bool) -> Tensor:
        c = self.gamma.shape[0]
        _require(self, x.ndim >= 2 and x.shape[1] == c,
                 f"was built for input of {c} channels (axis 1)", x.shape)
        args = (x, self.gamma, self.beta, self.running_mean, self.running_var)
        if not training:
            return gx.batch_norm(*args, training=False, eps=self.eps)
        y, mean, var = gx.batch_norm(*args, training=True, eps=self.eps,
                                     momentum=self.momentum)
        count = gx.size(x, (0, *range(2, x.ndim)))
        if isinstance(count, Tensor):
            # a batch of one value per channel (an epoch's last batch of one example) has
            # no unbiased variance (σ²·n/(n − 1) is 0/0): the running statistics stay as
            # they are; gx.batch_norm refuses such batches when their size is known
            mean = gx.where(count > 1, mean, self.running_mean)
            var = gx.where(count > 1, var, self.running_var)
        register_state_updates(y, {self.running_mean: mean, self.running_var: var})
        return y


BatchNorm1d = BatchNorm2d = BatchNorm


class LayerNorm(Layer):
    """Layer normalization (Ba et al., 2016): each example is normalized over its last
    ``axes`` dims, y = (x − μ) / √(σ² + eps) · γ + β, with μ and σ² (biased) the mean and
    variance over those dims; the same at training and inference.

    Parameters
    ----------
    eps : float
        Added to the variance, > 0.
    axes : int
        How many trailing dims to normalize over (1: the feature dim).
    elementwise_affine : bool
        Learn ``gamma`` (ones) and ``beta`` (zeros), each of the normalized dims' shape.
    """

    def __init__(self, eps: float = 1e-5, axes: int = 1, elementwise_affine: bool = True, *,
                 name: str | None = None) -> None:
        super().__init__(name)
        if not eps > 0:
            raise ValueError(f"LayerNorm: eps must be > 0, got {eps!r}")
        self.eps, self.axes = float(eps), _positive_int(axes, "axes", "LayerNorm")
        self.elementwise_affine = bool(elementwise_affine)

    def build(self, input_type: TensorType) -> None:
        shape = input_type.shape
        normalized = shape[len(shape) - self.axes:]
        _require(self, input_type.ndim >= self.axes
                 and all(isinstance(d, int) for d in normalized),
                 f"needs {self.axes} fixed trailing dim(s) to normalize over", shape)
        self.normalized_shape = tuple(normalized)
        self.gamma = self.beta = None
        if self.elementwise_affine:
            dtype = float_dtype(input_type)
            self.gamma = self.add_param("gamma", self.normalized_shape, "ones", dtype=dtype)
            self.beta = self.add_param("beta", self.normalized_shape, "zeros", dtype=dtype)

    def forward(self, x: Tensor, training: bool) -> Tensor:
        _require(self, tuple(x.shape[x.ndim - self.axes:]) == self.normalized_shape,
                 f"was built to normalize over trailing dims "
                 f"{format_shape(self.normalized_shape)}", x.shape)
        return gx.layer_norm(x, self.normalized_shape, self.gamma, self.beta, self.eps)


# -- regularization ---------------------------------------------------------------------------


class Dropout(Layer):
    """Inverted dropout (Srivastava et al., 2014): in training y = x ⊙ m / (1 − p), each
    m ~ Bernoulli(1 − p) drawn afresh at every compiled call, so E[y] = x; the identity
    when not training.

    Parameters
    ----------
    p : float
        The probability of zeroing each element, in [0, 1].
    """

    def __init__(self, p: float = 0.5, *, name: str | None = None) -> None:
        super().__init__(name)
        self.p = _probability(p, "Dropout")

    def forward(self, x: Tensor, training: bool) -> Tensor:
        return gx.dropout(x, self.p, training, key=_random_key(self))


# -- composition ------------------------------------------------------------------------------


class Residual(Layer):
    """A residual connection (He et al., 2016): y = x + f(x).

    ``f``'s params live in this layer's scope (``residual/dense/W``). ``f`` must keep
    its input's shape.

    Parameters
    ----------
    f : Layer
        The residual branch (a ``Sequential`` for several layers).
    """

    def __init__(self, f: Layer, *, name: str | None = None) -> None:
        super().__init__(name)
        if not isinstance(f, Layer):
            raise TypeError(f"Residual wraps a Layer, got {f!r}")
        self.f = f

    def sublayers(self) -> list[Layer]:
        return [self.f]

    def forward(self, x: Tensor, training: bool) -> Tensor:
        fx = self.f(x, training=training)
        if fx.shape != x.shape:
            raise ValueError(f"{_where(self)}: x + f(x) needs f to keep the input's shape, "
                             f"but {_where(self.f)} maps {format_shape(x.shape)} to "
                             f"{format_shape(fx.shape)}")
        return x + fx


# -- activations as layers --------------------------------------------------------------------


class Activation(Layer):
    """An activation function as a layer: y = f(x, **params), no params of its own.

    Parameters
    ----------
    activation : str or callable
        A name of ``FUNCTIONS`` (every entry of ``graphc.ops.activations.ACTIVATIONS``,
        ``"softmax"`` and ``"log_softmax"``) or a function ``f(x, **params) -> Tensor``.
    *args, **params
        The function's parameters (``Activation("leaky_relu", alpha=0.2)``), checked
        against its signature here. ``training`` and ``key`` are supplied at each call
        to functions that take them (``rrelu``).
    name : str, optional
        Defaults to the activation's name.
    """

    def __init__(self, activation: str | Callable[..., Tensor], *args: Any,
                 name: str | None = None, **params: Any) -> None:
        super().__init__(name)
        self._activator = _Activator(activation, args, params, type(self).__name__)
        if name is None:
            self.name = self._activator.name

    @property
    def function(self) -> Callable[..., Tensor]:
        """The activation function."""
        return self._activator.function

    @property
    def activation_params(self) -> dict[str, Any]:
        """The parameters passed to it at each call."""
        return dict(self._activator.params)

    def __repr__(self) -> str:
        params = "".join(f", {k}={v!r}" for k, v in self._activator.params.items())
        return f"{type(self).__name__}({self._activator.name!r}{params}, name={self.name!r})"

    def forward(self, x: Tensor, training: bool) -> Tensor:
        return _activate(self._activator, self, x, training)


class _NamedActivation(Activation):
    """Base of the generated one-activation classes (``ReLU``, ``LeakyReLU``, ...)."""

    #: the key of ``FUNCTIONS`` this class applies
    activation_name: ClassVar[str]

    def __init__(self, *args: Any, name: str | None = None, **params: Any) -> None:
        super().__init__(self.activation_name, *args, name=name, **params)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._activator.params.items())
        return f"{type(self).__name__}({params + ', ' if params else ''}name={self.name!r})"


class PReLU(Layer):
    """The parametric ReLU (He et al., 2015) with a learned slope:
    y = x for x > 0, α·x otherwise.

    Parameters
    ----------
    num_parameters : int
        1 (one slope shared by every element) or the number of channels, axis 1 of the
        input (one slope per channel, as torch).
    init : float
        The initial slope.
    """

    activation_name = "prelu"

    def __init__(self, num_parameters: int = 1, init: float = 0.25, *,
                 name: str | None = None) -> None:
        super().__init__(name)
        if name is None:
            self.name = self.activation_name
        self.num_parameters = _positive_int(num_parameters, "num_parameters", "PReLU")
        self.init = float(init)

    def build(self, input_type: TensorType) -> None:
        if self.num_parameters > 1:
            _require(self, input_type.ndim >= 2
                     and input_type.shape[1] == self.num_parameters,
                     f"has {self.num_parameters} slopes, one per channel of axis 1",
                     input_type.shape)
        self.alpha = self.add_param("alpha", (self.num_parameters,),
                                    initializers.constant(self.init),
                                    dtype=float_dtype(input_type))

    def forward(self, x: Tensor, training: bool) -> Tensor:
        alpha = self.alpha
        if self.num_parameters > 1:  # (C,) → (C, 1, ..., 1): one slope per channel
            alpha = gx.reshape(alpha, (self.num_parameters, *(1,) * (x.ndim - 2)))
        return gx.prelu(x, alpha)


#: class names that do not follow from the registry name by capitalizing its words
_CLASS_NAMES = {
    "relu": "ReLU", "relu6": "ReLU6", "leaky_relu": "LeakyReLU", "rrelu": "RReLU",
    "elu": "ELU", "selu": "SELU", "celu": "CELU", "gelu": "GELU", "silu": "SiLU",
    "logsigmoid": "LogSigmoid", "log_softmax": "LogSoftmax",
}

#: docstrings for registry entries that are elementwise primitives (no docstring of theirs)
_PRIMITIVE_MATH = {
    "tanh": "The hyperbolic tangent tanh(x) = (eˣ − e⁻ˣ) / (eˣ + e⁻ˣ); tanh' = 1 − tanh².",
    "sign": "The sign of x: −1, 0 or 1; its gradient is 0.",
}


def _class_name(name: str) -> str:
    return _CLASS_NAMES.get(name) or "".join(w.capitalize() for w in name.split("_"))


def _sections(doc: str) -> list[tuple[str, list[str]]]:
    """A numpy-style docstring as (heading, lines) sections; the summary's heading is ""."""
    lines, sections = doc.splitlines(), [("", [])]
    k = 0
    while k < len(lines):
        if k + 1 < len(lines) and lines[k].strip() and set(lines[k + 1].strip()) == {"-"}:
            sections.append((lines[k].strip(), []))
            k += 2
            continue
        sections[-1][1].append(lines[k])
        k += 1
    return sections


def _parameter_entries(lines: list[str]) -> dict[str, tuple[str, list[str]]]:
    """``name -> (type, description lines)`` of a Parameters section (``a, b : float``
    documents both a and b)."""
    entries: dict[str, tuple[str, list[str]]] = {}
    description: list[str] = []
    for line in lines:
        if line.strip() and not line.startswith(" "):
            names, _, kind = line.partition(" : ")
            description = []
            entries.update({n.strip(): (kind.strip(), description) for n in names.split(",")})
        elif line.strip():
            description.append(line)
    return entries


def _layer_docstring(name: str, function: Callable[..., Tensor]) -> str:
    """The generated class's docstring: the function's own math and notes, then the
    layer's parameters, described as the function describes them."""
    doc = _PRIMITIVE_MATH.get(name) or inspect.getdoc(function) or f"``{name}(x)``."
    sections = _sections(doc)
    documented = _parameter_entries(dict(sections).get("Parameters", []))
    summary = "\n".join(sections[0][1]).strip()
    lines = [f"The ``{name}`` activation as a layer: y = gx.{name}(x, **params).", "",
             summary, "", "Parameters", "----------"]
    for p in list(_signature(function).parameters.values())[1:]:
        if p.name in _CALL_ARGS:
            continue
        kind, description = documented.get(p.name, (str(p.annotation), []))
        default = "" if p.default is inspect.Parameter.empty else f", default {p.default!r}"
        lines += [f"{p.name} : {kind}{default}",
                  *(description or [f"    Passed to ``gx.{name}``."])]
    lines += ["name : str, optional", f"    Defaults to ``{name!r}``."]
    if any(k in _signature(function).parameters for k in _CALL_ARGS):
        lines += ["", "At each call the layer passes its ``training`` flag, and a key derived",
                  "from the model's seed and the layer's scope."]
    for heading, body in sections[1:]:
        if heading not in ("Parameters", "Returns"):
            lines += ["", heading, "-" * len(heading), *body]
    return "\n".join(lines).rstrip() + "\n"


def _activation_class(name: str) -> type[Activation]:
    """A named subclass of ``Activation`` applying ``FUNCTIONS[name]``."""
    class_name = _class_name(name)
    return type(class_name, (_NamedActivation,), {
        "activation_name": name, "__module__": __name__, "__qualname__": class_name,
        "__doc__": _layer_docstring(name, FUNCTIONS[name])})


#: one layer class per activation name: generated, but PReLU learns its slope
ACTIVATION_LAYERS: dict[str, type[Layer]] = {
    name: PReLU if name == "prelu" else _activation_class(name) for name in FUNCTIONS}
globals().update({cls.__name__: cls for cls in ACTIVATION_LAYERS.values()})

__all__ = [
    "Dense", "Linear", "DropConnect", "Maxout", "Highway", "Conv2d", "MaxPool2d", "AvgPool2d",
    "Flatten", "BatchNorm", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "Dropout", "Residual",
    "Activation", "ACTIVATION_LAYERS", "FUNCTIONS",
    *(cls.__name__ for cls in ACTIVATION_LAYERS.values() if cls is not PReLU), "PReLU",
]
