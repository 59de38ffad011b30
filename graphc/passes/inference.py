"""The inference phase: rewrites that are right once training is over.

``gx.compile(..., mode="inference")`` and ``gx.optimize(..., inference=True)`` run
these rules first, together with the canonical ones, so constant folding computes
whatever they turn into constants:

* ``freeze_param``: every param becomes a constant of its current value;
* ``remove_dropout``: inverted dropout becomes the identity, its expectation;
* ``fold_batch_norm_dense`` / ``fold_batch_norm_conv``: batch norm with running
  statistics right after a dense or conv layer folds into that layer's weight and
  bias; ``fold_channel_scale`` and ``fold_channel_shift`` then take in its γ and β.

The folding rules need the layer's weight and bias and the normalization's
statistics to be constants, which only ``freeze_param`` makes them: a training
graph (params, or batch statistics computed from the input) is never changed.

Batch norm folding, the whole of it (the lecture's algorithm)::

    BN(z) = (z − E) / √(Var + ε) · γ + β,   z = x ⊛ W + b   (⊛: matmul or conv2d)
          = x ⊛ (W · s) + (b − E) · s + β,    s = γ / √(Var + ε)  per output channel

It is done in the order the engine visits the nodes, bottom-up: first the
normalization (``fold_batch_norm_*``: s = 1 / √(Var + ε), b' = (b − E) · s), then
the multiplication by γ (``fold_channel_scale``: W'' = W' · γ, b'' = b' · γ), then
the addition of β (``fold_channel_shift``: b''' = b'' + β). Each step is exact on
its own, so γ and β may be absent (1 and 0). The new weight and bias are graph
expressions of constants, which constant folding computes: the compiled layer is
one matmul or conv2d plus one add.

Folding duplicates the layer's matmul or conv2d when its output ``z`` is also used
elsewhere (the engine does not tell a rule how many users a node has), so these
rules assume, as networks do, that a layer feeds only its batch norm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphc.graph import toposort
from graphc.ops import elementwise as ew
from graphc.ops import shape as shape_ops
from graphc.ops.random import RandomOp
from graphc.passes.engine import rule
from graphc.passes.pattern import Bindings, Var, constant_value, op
from graphc.tensor import Tensor, constant
from graphc.types import shape_size

# -- freezing params ---------------------------------------------------------------------------


@rule("freeze_param", op.param(), phase="inference")
def freeze_param(b: Bindings) -> Tensor:
    """param → constant(param.value).

    Inference compiles the network as trained: the param's value is copied into the
    program when it is compiled, so changing ``param.value`` afterwards does not change
    that compiled function; compile the graph again to use the new value.
    """
    return constant(b["node"].value)


# -- dropout -----------------------------------------------------------------------------------


def _is_constant(node: Tensor) -> bool:
    return node.op.name == "constant"


def _keep_matches_mask(b: Bindings) -> bool:
    """The divisor is the mask's keep probability (as ``gx.dropout`` writes it, 1 − p)."""
    keep = constant_value(b["keep"])
    return bool(np.all(keep == np.asarray(b["p"], dtype=keep.dtype)))


_x, _keep = Var("x"), Var("keep", where=_is_constant)

# Inverted dropout, x · m / (1 − p) with m ~ Bernoulli(1 − p) drawn in x's shape, has
# expectation x · (1 − p) / (1 − p) = x: at inference a network uses that expectation.
# Only this exact form is removed. A bernoulli_like mask in any other form (x · m without
# the rescaling, whose expectation is (1 − p) · x; noise a model injects on purpose;
# Monte-Carlo dropout sampled at test time) is randomness the user wrote, and replacing a
# draw by anything changes what the function computes, not only how.
rule("remove_dropout", op.div(_x * op.bernoulli_like(_x, p=Var("p")), _keep), _x,
     phase="inference", when=_keep_matches_mask)


# -- layers and per-channel constants ----------------------------------------------------------


def _constant_valued(node: Tensor) -> bool:
    """Does ``node`` depend on constants only (no input, param or random draw)? Constant
    folding turns such an expression into one constant."""
    for n in toposort([node]):
        if isinstance(n.op, RandomOp) or (not n.inputs and not _is_constant(n)):
            return False
    return True


@dataclass(frozen=True)
class Layer:
    """z = x ⊛ W + b: a dense (``matmul``, W of shape (K, C)) or conv (``conv2d``, W of
    shape (C, C_in / groups, kh, kw)) layer whose weight and bias depend on constants only.

    ``bias`` is a channel vector: shape (C,), or (1,) for a bias shared by all channels.
    """

    core: Tensor
    bias: Tensor | None

    @property
    def kind(self) -> str:
        return "dense" if self.core.op.name == "matmul" else "conv"

    @property
    def weight(self) -> Tensor:
        return self.core.inputs[1]

    @property
    def channel_axis(self) -> int:
        """Where the output channels are in z: last for dense, 1 (NCHW) for conv."""
        return self.core.ndim - 1 if self.kind == "dense" else 1

    def channel_vector(self, c: Tensor) -> Tensor | None:
        """``c`` as a channel vector, if it is a constant that varies (if at all) only along
        z's channel axis, so ``z · c`` scales each output channel by one number."""
        if not _constant_valued(c) or c.ndim > self.core.ndim:
            return None
        channels = self.core.shape[self.channel_axis]
        offset = self.core.ndim - c.ndim  # c's axes line up with z's last ones
        for axis, size in enumerate(c.shape, start=offset):
            if size != 1 and not (axis == self.channel_axis and size == channels):
                return None
        return shape_ops.reshape(c, (shape_size(c.shape),))  # every other size is 1

    def along_weight(self, v: Tensor) -> Tensor:
        """Channel vector ``v`` shaped to multiply W's output-channel axis."""
        return v if self.kind == "dense" else shape_ops.reshape(v, (-1, 1, 1, 1))

    def with_params(self, weight: Tensor, bias: Tensor | None) -> Tensor:
        """x ⊛ ``weight`` + ``bias`` (a channel vector), the layer's op and attributes kept."""
        z = self.core.op(self.core.inputs[0], weight, **self.core.attr)
        if bias is None:
            return z
        return ew.add(z, bias if self.kind == "dense" else shape_ops.reshape(bias, (1, -1, 1, 1)))


def _is_layer_core(node: Tensor) -> bool:
    """A matmul by one weight matrix, or a conv2d, with a weight of constants only."""
    if node.op.name == "matmul":
        if node.inputs[1].ndim != 2:  # a batch of weight matrices has no single channel axis
            return False
    elif node.op.name != "conv2d":
        return False
    return _constant_valued(node.inputs[1])


def layer_of(z: Tensor) -> Layer | None:
    """``z`` as a dense or conv layer with constant weight and bias, else ``None``."""
    if _is_layer_core(z):
        return Layer(z, None)
    if z.op.name != "add":
        return None
    for core, bias in (z.inputs, z.inputs[::-1]):
        # a "bias" that broadcasts z to a bigger shape is not one
        if _is_layer_core(core) and z.shape == core.shape:
            vector = Layer(core, None).channel_vector(bias)
            if vector is not None:
                return Layer(core, vector)
    return None


# -- batch norm folding ------------------------------------------------------------------------

_z = Var("z")
_mean, _std = Var("mean", where=_is_constant), Var("std", where=_is_constant)
_normalization = (_z - _mean) / _std  # batch norm with running statistics, before γ and β


def _fold_normalization(b: Bindings, kind: str) -> Tensor | None:
    """(x ⊛ W + b − E) / σ → x ⊛ (W / σ) + (b − E) / σ, σ = √(Var + ε) per channel."""
    layer = layer_of(b["z"])
    if layer is None or layer.kind != kind or b["node"].shape != layer.core.shape:
        return None
    mean, std = layer.channel_vector(b["mean"]), layer.channel_vector(b["std"])
    if mean is None or std is None or not np.all(constant_value(b["std"]) != 0):
        return None  # a zero σ gives ±inf/nan per element, which W / σ would not reproduce
    shifted = ew.neg(mean) if layer.bias is None else ew.sub(layer.bias, mean)
    return layer.with_params(ew.div(layer.weight, layer.along_weight(std)), ew.div(shifted, std))


@rule("fold_batch_norm_dense", _normalization, phase="inference")
def fold_batch_norm_dense(b: Bindings) -> Tensor | None:
    """(x @ W + b − E) / √(Var + ε) → x @ W' + b' with s = 1 / √(Var + ε) per output unit,
    W' = W · s (each column scaled), b' = (b − E) · s (b = 0 when absent). γ and β are
    then taken in by ``fold_channel_scale`` and ``fold_channel_shift``."""
    return _fold_normalization(b, "dense")


@rule("fold_batch_norm_conv", _normalization, phase="inference")
def fold_batch_norm_conv(b: Bindings) -> Tensor | None:
    """(conv2d(x, W) + b − E) / √(Var + ε) → conv2d(x, W') + b' with s = 1 / √(Var + ε)
    per output channel, W'[o] = W[o] · s[o] (each output filter scaled), b' = (b − E) · s
    (b = 0 when absent). γ and β are then taken in by ``fold_channel_scale`` and
    ``fold_channel_shift``."""
    return _fold_normalization(b, "conv")


_scale = Var("scale", where=_is_constant)


@rule("fold_channel_scale", _z * _scale, phase="inference")
def fold_channel_scale(b: Bindings) -> Tensor | None:
    """(x ⊛ W + b) · γ → x ⊛ (W · γ) + b · γ for γ constant per output channel (batch
    norm's scale): channel o of x ⊛ W is linear in filter/column o alone."""
    layer = layer_of(b["z"])
    if layer is None or b["node"].shape != layer.core.shape:
        return None
    gamma = layer.channel_vector(b["scale"])
    if gamma is None:
        return None
    bias = None if layer.bias is None else ew.mul(layer.bias, gamma)
    return layer.with_params(ew.mul(layer.weight, layer.along_weight(gamma)), bias)


_shift = Var("shift", where=_is_constant)


@rule("fold_channel_shift", _z + _shift, phase="inference")
def fold_channel_shift(b: Bindings) -> Tensor | None:
    """(x ⊛ W + b) + β → x ⊛ W + (b + β) for β constant per output channel (batch norm's
    shift). Without a bias, x ⊛ W + β already is the layer with bias β."""
    layer = layer_of(b["z"])
    if layer is None or layer.bias is None or b["node"].shape != layer.core.shape:
        return None
    beta = layer.channel_vector(b["shift"])
    if beta is None:
        return None
    return layer.with_params(layer.weight, ew.add(layer.bias, beta))
