"""Synchronized batch normalisation in one process: several ranks emulated by threads that meet
in each all-reduce, so that the statistics and the gradients across ranks can be checked
against a single batch and by finite differences (the MPI runs are tests/distributed's)."""
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest

import minidl
import minidl.functions as F
from minidl import distributed, layers
from minidl.autograd import Function
from minidl.functions.normalization import Standardize

AXES, EPS = (0, 1), 1e-3


class Ranks:
    """``weights`` (one per rank) emulated in one process: ``run(step)`` calls ``step(rank)``
    on a thread per rank, and each rank's ``parallel`` is a stand-in for the DataParallel, its
    ``comm.allreduce`` the sum of every rank's buffer, added in rank order as MPI would."""

    def __init__(self, weights):
        self.size = len(weights)
        self.barrier = threading.Barrier(self.size, timeout=30)
        self.buffers = [None] * self.size
        self.parallels = [SimpleNamespace(weight=w, comm=SimpleNamespace(
            allreduce=lambda buffer, what, rank=rank: self.allreduce(rank, buffer)))
            for rank, w in enumerate(weights)]

    def allreduce(self, rank, buffer):
        self.buffers[rank] = buffer.copy()
        self.barrier.wait()
        total = sum(self.buffers[1:], self.buffers[0])
        self.barrier.wait()
        buffer[...] = total
        return buffer

    def run(self, step):
        def guarded(rank):
            try:
                return step(rank)
            except BaseException:
                self.barrier.abort()  # the other ranks stop waiting for this one
                raise
        with ThreadPoolExecutor(self.size) as pool:
            return [f.result() for f in [pool.submit(guarded, r) for r in range(self.size)]]


class DataParallelStandardize(Function):
    """The global batch ``x`` cut into pieces of ``sizes`` examples, one per rank, each
    standardized by its own ``kind`` (Standardize) across the ranks; the pieces are put back
    together. ``weightless``: one more rank, with weight 0, trained again on that batch.

    Backward does what a data-parallel step does: rank ``r`` gets the gradient of its own
    mean loss, ``dL/dy_r / s_r`` with ``s_r = n_r / N`` its share of the global loss, and its
    ``dx_r`` is multiplied by ``s_r`` when the ranks' gradients are averaged."""

    def __init__(self, sizes, weightless=None, kind=Standardize):
        self.sizes, self.weightless, self.kind = sizes, weightless, kind
        self.ranks = Ranks([1.0] * len(sizes) + [0.0] * (weightless is not None))
        self.shares = np.array(sizes) / sum(sizes)

    def forward(self, x):
        pieces = np.split(x, np.cumsum(self.sizes)[:-1])
        pieces += [] if self.weightless is None else [self.weightless]
        self.fns = [self.kind(AXES, EPS, parallel) for parallel in self.ranks.parallels]
        ys = self.ranks.run(lambda r: self.fns[r].forward(pieces[r]))
        return np.concatenate(ys[:len(self.sizes)])

    def backward(self, gy):
        gs = [g / s for g, s in zip(np.split(gy, np.cumsum(self.sizes)[:-1]), self.shares)]
        gs += [] if self.weightless is None else [np.ones_like(self.weightless)]
        dxs = self.ranks.run(lambda r: self.fns[r].backward(gs[r]))
        assert all(np.isfinite(dx).all() for dx in dxs)  # a Weightless rank's too: it is
        return np.concatenate([s * dx for s, dx in zip(self.shares, dxs)])  # multiplied by 0


class GlobalMeans(Standardize):
    """The backward that takes the plain global means of ``g`` and ``g * xhat``: right only
    where every rank has as many examples."""

    def backward(self, gy):
        g, gx = self._sum([self.weight * gy.sum(axis=self.axes, keepdims=True),
                           self.weight * (gy * self.xhat).sum(axis=self.axes, keepdims=True)],
                          'the gradient sums')
        return self.inv_std * (gy - g / self.total - self.xhat * (gx / self.total))


def batch(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, 2)) * [2.0, 0.5] + [1.0, -3.0]


@pytest.mark.parametrize('sizes', [(4, 4), (3, 5), (1, 2, 5)])
def test_across_ranks_it_is_the_global_batch_forward_and_backward(sizes):
    x, gy = batch(sum(sizes)), batch(sum(sizes), seed=1)
    plain = Standardize(AXES, EPS)
    across = DataParallelStandardize(sizes, weightless=batch(2, seed=2))
    np.testing.assert_allclose(across.forward(x), plain.forward(x), rtol=1e-12, atol=1e-12)
    for fn in across.fns:  # the moving statistics are updated from these, alike on every rank
        np.testing.assert_allclose(fn.mean, plain.mean, rtol=1e-12)
        np.testing.assert_allclose(fn.var, plain.var, rtol=1e-12)
    np.testing.assert_allclose(across.backward(gy), plain.backward(gy), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('sizes, weightless', [((3, 5), None), ((2, 1, 3), batch(1, seed=3))])
def test_across_ranks_the_gradient_checks(check_grad, sizes, weightless):
    check_grad(lambda x: DataParallelStandardize(sizes, weightless)(x), batch(sum(sizes)))


def test_the_plain_global_means_fail_the_gradient_check_on_uneven_pieces(check_grad):
    """The check sees the difference that each rank's share of the loss makes."""
    check_grad(lambda x: DataParallelStandardize((4, 4), kind=GlobalMeans)(x), batch(8))
    with pytest.raises(minidl.GradcheckError):
        check_grad(lambda x: DataParallelStandardize((3, 5), kind=GlobalMeans)(x), batch(8))


def test_outside_a_distributed_fit_synchronized_changes_nothing():
    assert distributed.active() is None
    x = batch(6).astype(np.float32)
    outputs, grads, moving = [], [], []
    for synchronized in (False, True):
        bn = layers.BatchNormalization(momentum=0.5, synchronized=synchronized)
        bn.build((None, 3, 2))
        bn.gamma.data[...], bn.beta.data[...] = [1.5, -0.5], [0.25, 2.0]
        tensor = minidl.Tensor(x, requires_grad=True)
        y = bn(tensor, training=True)
        (y * y).sum().backward()
        outputs.append(y.numpy())
        grads.append([tensor.grad, bn.gamma.grad, bn.beta.grad])
        moving.append([w.numpy() for w in (bn.moving_mean, bn.moving_variance)])
    np.testing.assert_array_equal(outputs[0], outputs[1])
    for plain, synchronized in zip(grads[0] + moving[0], grads[1] + moving[1]):
        np.testing.assert_array_equal(plain, synchronized)


def test_batch_norm_takes_synchronized_and_keeps_its_local_gradients(check_grad):
    gamma, beta = np.array([1.5, -0.5]), np.array([0.25, 2.0])
    check_grad(lambda x, g, b: F.batch_norm(x, g, b, np.zeros(2), np.ones(2), training=True,
                                            synchronized=True), batch(5), gamma, beta)
