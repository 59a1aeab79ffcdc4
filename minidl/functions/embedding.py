"""Embedding lookup: rows of a table gathered by integer ids; backward scatter-adds them back,
so an id used several times in a batch collects every one of its gradients. Ids are checked
(whole numbers in 0..V-1) before the gather, so no kernel ever indexes outside the table."""
import numpy as np

from minidl.autograd import Function, as_array
from minidl.backends import kernels
from minidl.functions.indices import checked_indices


class Embedding(Function):
    """``W[ids]`` for a table W (V, D) and ids of any shape S -> (*S, D)."""

    def forward(self, W, ids):
        self.ids = checked_indices(ids, W.shape[0], 'embedding', what='id',
                                   limit='rows (input_dim)')
        self.vocab = W.shape[0]
        return W[self.ids]

    def backward(self, gy):
        return kernels.embedding_backward(self.ids, gy, self.vocab), None


def embedding(ids, W):
    """Look up the rows of ``W`` (V, D) for integer ``ids`` (N, ...) -> (N, ..., D)."""
    array = as_array(ids)
    return Embedding()(W, array if hasattr(array, 'dtype') else np.asarray(array))
