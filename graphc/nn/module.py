"""``Layer`` and ``Sequential``: params with names, built on first call.

A layer is a callable ``layer(x, training=True) -> Tensor`` that builds graph nodes.
Its params are made the first time it is called, when the input's shape is known,
inside ``gx.scope(layer.name)``: a param is named by its scope path (``dense_1/W``),
so drawings cluster it under its layer and checkpoints find it by name. Calling a
layer again reuses its params: ``model(x, training=True)`` and
``model(x, training=False)`` are two graphs over the same weights.

Non-trainable state (batch norm's running statistics) is a param too, updated by the
compiled training step: a layer registers ``{state_param: new_value}`` against the
output it built, and ``state_updates(loss)`` collects every such update in the graph
of ``loss``, however many times the model was called.

Initial values are reproducible without global state: a param draws from a generator
seeded by ``(seed, its name)``, so a model built twice with one seed has one set of
weights, whatever order its layers were built in.
"""

from __future__ import annotations

import re
import weakref
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np

import graphc as gx
from graphc.graph import toposort
from graphc.nn import init as initializers
from graphc.tensor import Param, Tensor, as_tensor
from graphc.types import FLOAT_DTYPES, TensorType, format_shape


class Layer:
    """Base class of layers: override ``build`` (make params) and ``forward``."""

    #: does the layer open a scope of its own (containers like ``Sequential`` do not)
    scoped = True

    def __init__(self, name: str | None = None) -> None:
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise ValueError(f"layer names are non-empty strings without '/', got {name!r}")
        self.name = name or _snake_case(type(self).__name__)
        self._name_given = name is not None
        #: the generated name before a container renamed the layer (``dense`` of ``dense_1``)
        self._base_name: str | None = None
        #: seed of the initial values; a container passes its own to its layers
        self.seed = 0
        self.built = False
        self.path = ""
        self._params: dict[str, Param] = {}
        self._state: dict[str, Param] = {}
        self.input_type: TensorType | None = None
        self.output_type: TensorType | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    # -- what subclasses write ----------------------------------------------------------------
    def build(self, input_type: TensorType) -> None:
        """Make the params for an input of ``input_type`` (called once, in the layer's scope)."""

    def forward(self, x: Tensor, training: bool) -> Tensor:
        """The layer's output for ``x``."""
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def sublayers(self) -> list[Layer]:
        """The layers this one calls (containers and wrappers override this)."""
        return []

    # -- calling ----------------------------------------------------------------------------------
    def __call__(self, x: Any, *, training: bool = True) -> Tensor:
        x = as_tensor(x)
        scope = gx.scope(self.name) if self.scoped else nullcontext(gx.current_scope())
        with scope as path:
            if self.built:
                y = self.forward(x, training)
            else:
                y = self._build_and_call(x, training, path)
        self.input_type, self.output_type = x.type, y.type
        return y

    def _build_and_call(self, x: Tensor, training: bool, path: str) -> Tensor:
        """The first call: build, then forward (a container's layers build in its forward).
        If it fails, every layer it began to build is unbuilt again, so that a corrected
        call builds them afresh for its input."""
        unbuilt = [layer for layer in layer_tree(self) if not layer.built]
        try:
            self.path = path
            for layer in self.sublayers():
                layer.seed = self.seed
            self.build(x.type)
            self.built = True
            return self.forward(x, training)
        except BaseException:
            for layer in unbuilt:
                layer.built = False
                layer._params.clear()
                layer._state.clear()
            raise

    def add_param(self, name: str, shape: Sequence[int], init: str | Any = "zeros", *,
                  dtype: str = "float32", trainable: bool = True) -> Param:
        """A param of this layer named ``<scope path>/<name>``, initialized by ``init``."""
        shape = tuple(int(d) for d in shape)
        full = f"{self.path}/{name}" if self.path else name
        rng = np.random.default_rng([self.seed, zlib.crc32(full.encode())])
        initializer = initializers.get(init)
        value = np.asarray(initializer(shape, rng, dtype), dtype=dtype)
        if value.shape != shape:
            raise ValueError(f"{type(self).__name__} {self.name!r}: the initializer "
                             f"{getattr(initializer, '__name__', initializer)!r} gave shape "
                             f"{format_shape(value.shape)} for {full!r} of shape "
                             f"{format_shape(shape)}")
        param = gx.param(full, value)
        (self._params if trainable else self._state)[name] = param
        return param

    # -- what a layer holds -----------------------------------------------------------------
    def params(self) -> list[Param]:
        """Trainable params, this layer's then its sublayers', in build order."""
        return _unique([*self._params.values(), *(p for layer in self.sublayers()
                                                  for p in layer.params())])

    def state(self) -> list[Param]:
        """Non-trainable params (running statistics), updated by ``state_updates``."""
        return _unique([*self._state.values(), *(p for layer in self.sublayers()
                                                 for p in layer.state())])

    def named_params(self) -> dict[str, Param]:
        """Every param, trainable and not, by its name (``dense_1/W``)."""
        named: dict[str, Param] = {}
        for p in [*self.params(), *self.state()]:
            if named.setdefault(p.name, p) is not p:
                raise ValueError(f"two params are named {p.name!r}; give the layers "
                                 "distinct names")
        return named

    def count_params(self) -> int:
        """The number of scalar values in every param, trainable and not."""
        return sum(p.value.size for p in [*self.params(), *self.state()])

    def summary(self, print_fn: Any = print) -> str:
        """The Keras-style table of layers, output shapes and param counts; printed by
        ``print_fn`` (``None`` to only return it). The model must have been called."""
        text = _summary_table(self)
        if print_fn is not None:
            print_fn(text)
        return text

    # -- training (graphc.train, imported on first use: tqdm and scikit-learn load slowly) --
    def fit(self, X: Any, y: Any, **options: Any) -> Any:
        """Train this model: ``graphc.train.fit(self, X, y, **options)``; returns a History."""
        from graphc import train
        return train.fit(self, X, y, **options)

    def evaluate(self, X: Any, y: Any, **options: Any) -> dict[str, float]:
        """Loss and metrics on ``(X, y)``: ``graphc.train.evaluate(self, X, y, **options)``."""
        from graphc import train
        return train.evaluate(self, X, y, **options)

    def predict(self, X: Any, **options: Any) -> np.ndarray:
        """Outputs for ``X`` in inference mode: ``graphc.train.predict(self, X, **options)``."""
        from graphc import train
        return train.predict(self, X, **options)


class Sequential(Layer):
    """Layers applied one after another: ``Sequential([Dense(64), ReLU(), Dense(10)])``.

    Its layers get names unique within it in Keras's way (``dense``, ``dense_1``, ...);
    it opens no scope of its own, so its params are named ``dense_1/W``.

    Parameters
    ----------
    layers : sequence of Layer
    seed : int
        Seed of every layer's initial values.
    input_shape : sequence of int or str, optional
        The shape of one example (without the batch dim); given, the model is built at
        once for input ``("batch", *input_shape)``, so ``summary()`` works before a call.
    dtype : str
        The input dtype when ``input_shape`` is given.
    """

    scoped = False

    def __init__(self, layers: Iterable[Layer], *, seed: int = 0, name: str | None = None,
                 input_shape: Sequence[int | str] | None = None, dtype: str = "float32") -> None:
        super().__init__(name)
        self.layers = list(layers)
        bad = [layer for layer in self.layers if not isinstance(layer, Layer)]
        if bad:
            raise TypeError(f"Sequential takes layers, got {bad[0]!r}")
        self.seed = seed
        _give_unique_names(self)
        if input_shape is not None:
            self(gx.input("x", ("batch", *input_shape), dtype))

    def sublayers(self) -> list[Layer]:
        return self.layers

    def forward(self, x: Tensor, training: bool) -> Tensor:
        for layer in self.layers:
            x = layer(x, training=training)
        return x


# -- state updates ------------------------------------------------------------------------------

_STATE_UPDATES: weakref.WeakKeyDictionary[Tensor, tuple[tuple[Param, Tensor], ...]] = \
    weakref.WeakKeyDictionary()


def register_state_updates(output: Tensor, updates: dict[Param, Tensor]) -> None:
    """Record that computing ``output`` in training updates these params (running stats)."""
    _STATE_UPDATES[output] = tuple(updates.items())


def state_updates(*outputs: Tensor) -> dict[Param, Tensor]:
    """The state updates (``{param: new value}``) of every layer in the graph of ``outputs``,
    to pass to ``gx.compile(..., updates=...)`` beside the optimizer's."""
    found: dict[Param, Tensor] = {}
    for node in toposort(outputs):
        for param, value in _STATE_UPDATES.get(node, ()):
            if found.setdefault(param, value) is not value:
                raise ValueError(f"{param.name!r} is updated by two calls of its layer in one "
                                 "graph; call a layer with state once per training graph")
    return found


# -- helpers ------------------------------------------------------------------------------------

def float_dtype(t: TensorType) -> str:
    """The dtype a layer's params take for input of type ``t`` (float32 for int input)."""
    return t.dtype if t.dtype in FLOAT_DTYPES else "float32"


def _snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _unique(params: list[Param]) -> list[Param]:
    return list(dict.fromkeys(params))


def layer_tree(layer: Layer) -> list[Layer]:
    """``layer`` and every layer below it (through ``sublayers``), depth first, each once."""
    def walk(node: Layer) -> Iterator[Layer]:
        yield node
        for sub in node.sublayers():
            yield from walk(sub)

    return list(dict.fromkeys(walk(layer)))


def _unscoped_tree(layer: Layer) -> Iterator[Layer]:
    """The layers whose params share ``layer``'s scope: its sublayers, through containers."""
    for sub in layer.sublayers():
        yield sub
        if not sub.scoped:
            yield from _unscoped_tree(sub)


def _give_unique_names(container: Layer) -> None:
    """Rename ``container``'s layers so none shares a scope name (dense, dense_1, ...).

    Names the user gave are kept, and so are the names of built layers: their params are
    named after them. A layer used twice (shared weights) is one layer.
    """
    layers = list(dict.fromkeys(layer for layer in _unscoped_tree(container) if layer.scoped))
    taken: dict[str, Layer] = {}
    for layer in layers:
        if layer._name_given or layer.built:
            other = taken.setdefault(layer.name, layer)
            if other is not layer:
                hint = ("; built layers keep their names, which their params carry: nest "
                        "models before building them, or name their layers apart"
                        if layer.built or other.built else "")
                raise ValueError(f"two layers are named {layer.name!r}{hint}")
    suffixes: dict[str, int] = {}
    for layer in layers:
        if layer._name_given or layer.built:
            continue
        if layer._base_name is None:
            layer._base_name = layer.name
        base, k = layer._base_name, suffixes.get(layer._base_name, 0)
        name = base if k == 0 else f"{base}_{k}"
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        suffixes[base] = k
        layer.name = name
        taken[name] = layer


def _summary_table(model: Layer) -> str:
    if not model.built:
        raise ValueError(f"{model.name!r} has not been built: call it on an input "
                         "(gx.input('x', ('batch', ...))) or give Sequential input_shape=")
    rows = [(f"{layer.name} ({type(layer).__name__})",
             format_shape(layer.output_type.shape) if layer.output_type else "?",
             f"{layer.count_params():,}")
            for layer in (model.sublayers() or [model])]
    header = ("Layer (type)", "Output Shape", "Param #")
    widths = [max(len(r[k]) for r in [header, *rows]) + 2 for k in range(3)]
    rule = "─" * sum(widths)

    def line(cells: tuple[str, str, str]) -> str:
        return "".join(c.ljust(w) if k < 2 else c.rjust(w - 2)
                       for k, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    trainable = sum(p.value.size for p in model.params())
    fixed = sum(p.value.size for p in model.state())
    return "\n".join([
        f'Model: "{model.name}"', rule, line(header), rule.replace("─", "═"),
        *(line(r) for r in rows), rule,
        f"Total params: {trainable + fixed:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {fixed:,}",
    ])
