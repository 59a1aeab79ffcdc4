"""Embedding lookup: rows of a table gathered by integer ids; backward scatter-adds them back,
so an id used several times in a batch collects every one of its gradients."""
import numpy as np

from minidl.autograd import Function, as_array
from minidl.backends import get_array_module, kernels


class Embedding(Function):
    """``W[ids]`` for a table W (V, D) and ids of any shape S -> (*S, D)."""

    def forward(self, W, ids):
        xp = get_array_module(W)
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= W.shape[0]):
            bad = int(ids.max()) if int(ids.max()) >= W.shape[0] else int(ids.min())
            raise ValueError(f'embedding: index {bad} is out of range for a table of '
                             f'{W.shape[0]} rows (input_dim); valid ids are 0..{W.shape[0] - 1}')
        self.ids, self.vocab = ids.astype(xp.int64), W.shape[0]
        return W[self.ids]

    def backward(self, gy):
        return kernels.embedding_backward(self.ids, gy, self.vocab), None


def embedding(ids, W):
    """Look up the rows of ``W`` (V, D) for integer ``ids`` (N, ...) -> (N, ..., D)."""
    array = as_array(ids)
    if not np.issubdtype(array.dtype, np.integer):
        if not (array == array.astype(np.int64)).all():
            raise TypeError(f'embedding: ids must be integers, got dtype {array.dtype}')
        array = array.astype(np.int64)
    return Embedding()(W, array)
