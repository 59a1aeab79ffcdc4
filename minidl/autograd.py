"""Define-by-run automatic differentiation: :class:`Tensor` and :class:`Function`.

A :class:`Function` computes on raw arrays (``numpy`` or ``cupy``): ``forward(*arrays)`` returns
the output array and keeps on ``self`` what ``backward(grad)`` will need; ``backward`` returns
one gradient per input (``None`` where an input needs none). Calling a Function on tensors runs
``forward`` and, when some input requires a gradient, records the call as the output's
``creator``. ``Tensor.backward()`` walks those records from the output back to the leaves.
"""
import contextlib

import numpy as np

from minidl.backends import device_of, get_array_module, to_device

_grad_enabled = [True]


@contextlib.contextmanager
def no_grad():
    """Within this block, operations record no graph (inference, weight updates)."""
    previous = _grad_enabled[0]
    _grad_enabled[0] = False
    try:
        yield
    finally:
        _grad_enabled[0] = previous


@contextlib.contextmanager
def frozen(tensors):
    """Within this block ``tensors`` (weights, say) take no gradient, so a backward pass
    computes only what the other inputs need and fills no ``.grad`` of theirs; their flags
    are restored after."""
    thawed = [t for t in tensors if t.requires_grad]
    for t in thawed:
        t.requires_grad = False
    try:
        yield
    finally:
        for t in thawed:
            t.requires_grad = True


def is_grad_enabled():
    """False inside :func:`no_grad`."""
    return _grad_enabled[0]


def _is_float(dtype):
    return np.issubdtype(dtype, np.floating)


def as_array(value, like=None):
    """The raw array behind ``value``: a Tensor's data, an array, or a Python scalar.

    Python scalars take the dtype of ``like`` (when it is floating) so that ``x * 2`` keeps a
    float32 tensor in float32.
    """
    if isinstance(value, Tensor):
        return value.data
    if like is not None and np.isscalar(value) and _is_float(like.dtype):
        return get_array_module(like).asarray(value, dtype=like.dtype)
    if like is not None and not hasattr(value, 'shape'):
        return get_array_module(like).asarray(value)
    return value


class Function:
    """One differentiable operation; subclasses define ``forward`` and ``backward``.

    ``self.needs_input_grad`` (a tuple of bools, one per input) is set before ``backward`` runs
    so an op computes only the gradients that are required.
    """

    inputs = None
    needs_input_grad = ()

    def __call__(self, *inputs):
        like = next((x.data for x in inputs if isinstance(x, Tensor)), None)
        arrays = [as_array(x, like) for x in inputs]
        get_array_module(*(a for a in arrays if hasattr(a, 'shape')))
        output = Tensor(self.forward(*arrays))
        needs = tuple(isinstance(x, Tensor) and x.requires_grad for x in inputs)
        if _grad_enabled[0] and any(needs):
            output.requires_grad = True
            output.creator = self
            self.inputs = [_edge(x) for x in inputs]
            self.output_shape = output.shape  # what minidl.viz.plot_graph labels its arrow with
            self.needs_input_grad = needs
        return output

    def forward(self, *arrays):
        raise NotImplementedError(f'{type(self).__name__}.forward')

    def backward(self, grad):
        raise NotImplementedError(f'{type(self).__name__}.backward')

    def __repr__(self):
        return f'<{type(self).__name__}>'


def _edge(x):
    """What the graph keeps of one input: the Function that made it, or the tensor itself for a
    leaf (its ``.grad`` is filled) and for a tensor that asked to ``retain_grad``.

    Keeping only the creator of an intermediate tensor lets its data be freed as soon as no one
    else holds it: a Function saves on itself exactly the arrays its backward needs.
    """
    if not isinstance(x, Tensor) or not x.requires_grad:
        return None
    return x if x.creator is None or x._retain_grad else x.creator


class Tensor:
    """An array with an optional gradient and the record of how it was computed.

    ``data`` is a NumPy or CuPy array; ``grad`` (same shape, raw array) is filled by
    :meth:`backward` for leaves that require a gradient and for tensors that called
    :meth:`retain_grad`.
    """

    __array_priority__ = 1000  # numpy_array * tensor uses Tensor.__rmul__

    def __init__(self, data, requires_grad=False, name=None):
        if isinstance(data, Tensor):
            data = data.data
        if isinstance(data, np.generic):
            data = np.asarray(data)
        elif not hasattr(data, 'shape'):
            data = np.asarray(data)
            if data.dtype == np.float64:  # Python floats become float32, as in PyTorch
                data = data.astype(np.float32)
        self.data = data
        self.grad = None
        self.creator = None
        self.name = name
        self._retain_grad = False
        self.requires_grad = requires_grad

    # --- basic properties -------------------------------------------------------------
    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        if flag and not _is_float(self.data.dtype):
            raise TypeError(f'only floating-point tensors can require gradients; this tensor '
                            f'has dtype {self.data.dtype}')
        self._requires_grad = bool(flag)

    shape = property(lambda self: tuple(self.data.shape))
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: self.data.size)
    device = property(lambda self: device_of(self.data))

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        name = f', name={self.name!r}' if self.name else ''
        grad = ', requires_grad=True' if self.requires_grad else ''
        return (f'Tensor(shape={self.shape}, dtype={self.dtype}, device={self.device!r}'
                f'{grad}{name})')

    __hash__ = object.__hash__

    # --- conversions --------------------------------------------------------------------
    def numpy(self):
        """The data as a NumPy array (copied from the GPU when it lives there)."""
        return to_device(self.data, 'cpu')

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.size != 1:
            raise ValueError(f'item() needs a tensor with one element, got shape {self.shape}')
        return self.data.reshape(()).item()

    def __float__(self):
        return float(self.item())

    def __bool__(self):
        """The truth of a one-element tensor (``t == 0.5`` in an ``if``); more is an error."""
        return bool(self.item())

    def detach(self):
        """A new leaf sharing this data, cut from the graph."""
        return Tensor(self.data, name=self.name)

    def to(self, device):
        """A copy of this tensor on 'cpu' or 'gpu' (itself when it is already there)."""
        if device_of(self.data) == device:
            return self
        return Tensor(to_device(self.data, device), requires_grad=self.requires_grad,
                      name=self.name)

    def zero_grad(self):
        self.grad = None

    def retain_grad(self):
        """Keep the gradient of this non-leaf tensor after backward (e.g. for Grad-CAM).

        Call it before the tensor is used: the graph then keeps the tensor to fill its grad.
        """
        self._retain_grad = True
        return self

    # --- backpropagation ----------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``grad`` is the gradient flowing in from above; it may be omitted only for a tensor
        with one element. The graph is walked in topological order without recursion, and is
        freed afterwards unless ``retain_graph`` is true.
        """
        self._backpropagate(grad, retain_graph, Tensor._accumulate)

    def _backpropagate(self, grad, retain_graph, deliver):
        """Walk the graph below this tensor, calling ``deliver(tensor, g)`` for every leaf and
        every retained tensor that the gradient ``g`` reaches (once per path)."""
        if not self.requires_grad:
            raise RuntimeError('backward() called on a tensor that does not require grad '
                               '(no input of its computation had requires_grad=True)')
        if grad is None:
            if self.size != 1:
                raise ValueError(f'backward() without a gradient needs a tensor with one '
                                 f'element, got shape {self.shape}; pass grad= of that shape')
            grad = get_array_module(self.data).ones_like(self.data)
        grad = as_array(grad, self.data)
        if tuple(grad.shape) != self.shape:
            raise ValueError(f'backward(): grad has shape {tuple(grad.shape)}, tensor has '
                             f'shape {self.shape}')
        if self.creator is None or self._retain_grad:
            deliver(self, grad)
        if self.creator is None:
            return
        pending = {id(self.creator): grad}
        for fn in _topological_order(self.creator):
            if fn.inputs is None:
                raise RuntimeError('backward() through a graph that was already freed; '
                                   'pass retain_graph=True to the first backward()')
            grads = fn.backward(pending.pop(id(fn)))
            if not isinstance(grads, tuple):
                grads = (grads,)
            for edge, g in zip(fn.inputs, grads):
                if edge is None or g is None:
                    continue
                creator = edge.creator if isinstance(edge, Tensor) else edge
                if isinstance(edge, Tensor) and (creator is None or edge._retain_grad):
                    deliver(edge, g)
                if creator is None:
                    continue
                key = id(creator)
                pending[key] = g if key not in pending else pending[key] + g
            if not retain_graph:
                fn.__dict__.clear()

    def _accumulate(self, grad):
        self.grad = grad.copy() if self.grad is None else self.grad + grad

    # --- operators (the functions live in minidl.functions) -------------------------------
    def __add__(self, other): return F.add(self, other)
    def __radd__(self, other): return F.add(other, self)
    def __sub__(self, other): return F.sub(self, other)
    def __rsub__(self, other): return F.sub(other, self)
    def __mul__(self, other): return F.mul(self, other)
    def __rmul__(self, other): return F.mul(other, self)
    def __truediv__(self, other): return F.div(self, other)
    def __rtruediv__(self, other): return F.div(other, self)
    def __pow__(self, other): return F.pow(self, other)
    def __rpow__(self, other): return F.pow(other, self)
    def __matmul__(self, other): return F.matmul(self, other)
    def __rmatmul__(self, other): return F.matmul(other, self)
    def __neg__(self): return F.neg(self)
    def __getitem__(self, index): return F.getitem(self, index)

    def _compare(self, other, op):
        return Tensor(op(self.data, as_array(other, self.data)))

    def __lt__(self, other): return self._compare(other, lambda a, b: a < b)
    def __le__(self, other): return self._compare(other, lambda a, b: a <= b)
    def __gt__(self, other): return self._compare(other, lambda a, b: a > b)
    def __ge__(self, other): return self._compare(other, lambda a, b: a >= b)
    def __eq__(self, other): return self._compare(other, lambda a, b: a == b)
    def __ne__(self, other): return self._compare(other, lambda a, b: a != b)

    def reshape(self, *shape):
        return F.reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes):
        return F.transpose(self, axes[0] if len(axes) == 1 else (axes or None))

    T = property(lambda self: F.transpose(self))

    def sum(self, axis=None, keepdims=False): return F.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return F.mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return F.max(self, axis, keepdims)
    def exp(self): return F.exp(self)
    def log(self): return F.log(self)


def tensor(data, requires_grad=False, dtype=None, name=None):
    """Make a Tensor from a list, scalar or array (floats default to float32)."""
    data = as_array(data)
    if dtype is not None:
        data = get_array_module(data).asarray(data, dtype=dtype)
    return Tensor(data, requires_grad=requires_grad, name=name)


def grad(output, inputs, grad_output=None):
    """d(output)/d(each of ``inputs``) as new Tensors, leaving every ``.grad`` untouched.

    ``grad_output`` defaults to ones, so a tensor of many elements gives the gradient of its
    sum (as ``tf.gradients`` does). An input that is not a leaf must have called
    :meth:`Tensor.retain_grad` before it was used; an input the output does not depend on gets
    zeros. The graph is kept, so several gradients of one output can be taken.
    """
    wanted = {id(x): None for x in inputs}

    def deliver(tensor, g):
        if id(tensor) in wanted:
            wanted[id(tensor)] = g if wanted[id(tensor)] is None else wanted[id(tensor)] + g

    if grad_output is None:
        grad_output = get_array_module(output.data).ones_like(output.data)
    if output.requires_grad:
        output._backpropagate(grad_output, True, deliver)
    xp = get_array_module(output.data)
    return [Tensor(xp.zeros_like(x.data) if wanted[id(x)] is None else wanted[id(x)])
            for x in inputs]


def _topological_order(root):
    """Functions reachable from ``root``, each listed before the functions that feed it.

    An iterative depth-first post-order, so a graph 10,000 ops deep needs no recursion.
    """
    order, done = [], set()
    stack = [(root, False)]
    while stack:
        fn, expanded = stack.pop()
        if id(fn) in done:
            continue
        if expanded:
            done.add(id(fn))
            order.append(fn)
            continue
        stack.append((fn, True))
        for edge in fn.inputs or ():
            creator = edge.creator if isinstance(edge, Tensor) else edge
            if creator is not None and id(creator) not in done:
                stack.append((creator, False))
    order.reverse()
    return order


# The operators above call minidl.functions, which itself builds on Function and Tensor; the
# import sits here, after both are defined, so that either module may be imported first.
import minidl.functions as F  # noqa: E402
