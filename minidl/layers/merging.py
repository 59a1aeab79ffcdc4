"""Merge layers: several tensors in, one out (Keras's ``keras.layers.merging``).

Each is called on a list, ``layers.Concatenate()([a, b])``, or through its functional form,
``layers.concatenate([a, b])``. The elementwise merges take inputs whose shapes agree after
NumPy broadcasting (unknown sizes agree with anything); a list that cannot merge is a
ValueError naming the layer and every input shape. Gradients come from the composed
functions (``F.add``, ``F.concatenate``, ``F.matmul``), so each input gets its own part.
"""
import functools

import minidl.functions as F
from minidl.layers import arguments
from minidl.layers.base import Layer, format_shape


class Merge(Layer):
    """Base of the merges: ``combine(tensors)`` on two or more inputs of matching shapes."""

    arity = None  # the exact number of inputs, where the merge needs one
    takes_list = True

    def _problem(self, shapes, problem):
        listed = ', '.join(map(format_shape, shapes))
        return ValueError(f'{self.name} ({type(self).__name__}) {problem}; got inputs of '
                          f'shapes {listed}')

    def check_input_shape(self, input_shape):
        if not isinstance(input_shape, list):
            raise ValueError(f'{self.name} ({type(self).__name__}) merges a list of tensors, '
                             f'got one tensor of shape {format_shape(input_shape)}')
        if self.arity is not None and len(input_shape) != self.arity:
            raise self._problem(input_shape, f'merges exactly {self.arity} inputs')
        if len(input_shape) < 2:
            raise self._problem(input_shape, 'merges at least 2 inputs')
        self.merged_shape(input_shape)

    def merged_shape(self, shapes):
        """The broadcast of ``shapes`` (batch axis included), None where a size is unknown."""
        rank = max(len(s) for s in shapes)
        padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
        merged = []
        for sizes in zip(*padded):
            known = {d for d in sizes if d is not None and d != 1}
            if len(known) > 1:
                raise self._problem(shapes, 'needs shapes that broadcast together')
            merged.append(known.pop() if known else (None if None in sizes else 1))
        return tuple(merged)

    def compute_output_shape(self, input_shape):
        return self.merged_shape(input_shape)

    def call(self, x, training=False):
        return self.combine(x)


class Add(Merge):
    """The elementwise sum of the inputs."""

    def combine(self, xs):
        return functools.reduce(F.add, xs)


class Subtract(Merge):
    """The first input minus the second."""

    arity = 2

    def combine(self, xs):
        return F.sub(xs[0], xs[1])


class Multiply(Merge):
    """The elementwise product of the inputs."""

    def combine(self, xs):
        return functools.reduce(F.mul, xs)


class Average(Merge):
    """The elementwise mean of the inputs."""

    def combine(self, xs):
        return functools.reduce(F.add, xs) * (1.0 / len(xs))


class Maximum(Merge):
    """The elementwise maximum of the inputs."""

    def combine(self, xs):
        return functools.reduce(F.maximum, xs)


class Minimum(Merge):
    """The elementwise minimum of the inputs."""

    def combine(self, xs):
        return functools.reduce(F.minimum, xs)


class Concatenate(Merge):
    """The inputs joined along ``axis`` (the channels by default); every other size must agree."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = arguments.integer(self, 'axis', axis)

    def merged_shape(self, shapes):
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes):
            raise self._problem(shapes, 'needs inputs of one rank')
        axis = self.axis % rank if -rank <= self.axis < rank else None
        if axis in (None, 0):
            raise self._problem(shapes, f'cannot join along axis {self.axis} (inputs of rank '
                                        f'{rank}, whose axis 0 is the batch)')
        merged = []
        for i, sizes in enumerate(zip(*shapes)):
            known = {d for d in sizes if d is not None}
            if i == axis:
                merged.append(None if None in sizes else sum(sizes))
            elif len(known) > 1:
                raise self._problem(shapes, f'needs every size but axis {self.axis} to agree')
            else:
                merged.append(known.pop() if known else None)
        return tuple(merged)

    def combine(self, xs):
        return F.concatenate(xs, self.axis)

    def get_config(self):
        return {**super().get_config(), 'axis': self.axis}


class Dot(Merge):
    """The dot product of two inputs over ``axes`` (one axis index, or one per input, counted
    with the batch axis as 0), per example; ``normalize`` L2-normalizes both along those axes
    first (cosine similarity). Two ``(batch, n)`` inputs give ``(batch, 1)``."""

    arity = 2

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        pair = axes if isinstance(axes, (list, tuple)) else (axes, axes)
        if len(pair) != 2:
            raise ValueError(f'{self.name} (Dot): axes must be one axis or two, got {axes!r}')
        self.axes = tuple(arguments.integer(self, 'axes', a) for a in pair)
        self.normalize = bool(normalize)

    def _contracted(self, shapes):
        axes = []
        for shape, axis in zip(shapes, self.axes):
            if not -len(shape) < axis < len(shape) or axis % len(shape) == 0:
                raise self._problem(shapes, f'cannot contract axis {axis} of an input of rank '
                                            f'{len(shape)} (axis 0 is the batch)')
            axes.append(axis % len(shape))
        return axes

    def merged_shape(self, shapes):
        a, b = shapes
        i, j = self._contracted(shapes)
        if None not in (a[i], b[j]) and a[i] != b[j]:
            raise self._problem(shapes, f'needs axis {self.axes[0]} of the first input and '
                                        f'axis {self.axes[1]} of the second to agree')
        rest = a[1:i] + a[i + 1:] + b[1:j] + b[j + 1:]
        return (None,) + (rest or (1,))

    def combine(self, xs):
        a, b = xs
        i, j = self._contracted([a.shape, b.shape])
        if self.normalize:
            a, b = _l2_normalize(a, i), _l2_normalize(b, j)
        a = F.transpose(a, [k for k in range(a.ndim) if k != i] + [i])
        b = F.transpose(b, [0, j] + [k for k in range(1, b.ndim) if k != j])
        rows, cols = a.shape[1:-1], b.shape[2:]
        product = F.matmul(a.reshape(a.shape[0], -1, a.shape[-1]),
                           b.reshape(b.shape[0], b.shape[1], -1))
        return product.reshape((a.shape[0],) + (rows + cols or (1,)))

    def get_config(self):
        return {**super().get_config(), 'axes': list(self.axes), 'normalize': self.normalize}


def _l2_normalize(x, axis):
    """``x / sqrt(max(sum(x**2, axis), 1e-12))``, as ``tf.math.l2_normalize``."""
    return x / F.sqrt(F.maximum(F.sum(x * x, axis, keepdims=True), 1e-12))


def _functional(cls):
    def merge(inputs, **kwargs):
        return cls(**kwargs)(inputs)
    merge.__name__ = cls.__name__.lower()
    merge.__qualname__ = merge.__name__
    merge.__doc__ = f'``{cls.__name__}(**kwargs)(inputs)``: {cls.__doc__}'
    return merge


add, subtract, multiply, average, maximum, minimum, concatenate = map(_functional, (
    Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate))


def dot(inputs, axes, normalize=False, **kwargs):
    """``Dot(axes, normalize)(inputs)``."""
    return Dot(axes, normalize, **kwargs)(inputs)
