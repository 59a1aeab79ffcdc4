"""One model trained in lockstep by every rank, each on its own shard of the data.

A training step on each rank: forward and backward on its own batch, then one all-reduce of
the batch sizes and metrics (float64, on the host) and one of the gradients, packed into one
flat buffer per dtype (:class:`Buckets`), then the same optimizer update everywhere. The
gradients are averaged with each rank's share of the global batch as its weight,
``g = sum_r n_r g_r / sum_r n_r``, so the update is the one a single process would make on the
whole global batch, even where the pieces are uneven; the logs are averaged the same way, so
the progress bar, the History and every callback see the global batch's figures.
"""
import contextlib
import os

import numpy as np

from minidl.backends import device_of, get_array_module, to_device

_active = []  # the DataParallel whose fit or evaluate is running (synchronized BatchNorm's peer)


def active():
    """The DataParallel of the distributed ``fit`` or ``evaluate`` that is running, or None."""
    return _active[-1] if _active else None


class Buckets:
    """Arrays of many shapes packed into one flat buffer per (dtype, device), so that one
    collective moves them all. ``views[i]`` is array ``i``'s place in its buffer, shaped like it.

    templates: arrays giving the shapes, dtypes and devices; ``host=True`` keeps every buffer
    in host memory (for MPI) whatever the templates' device.
    """

    def __init__(self, templates, host=False):
        groups = {}
        for i, array in enumerate(templates):
            device = 'cpu' if host else device_of(array)
            groups.setdefault((np.dtype(array.dtype), device), []).append(i)
        self.buffers, self.views = [], [None] * len(templates)
        for (dtype, device), members in groups.items():
            xp = np if device == 'cpu' else get_array_module(templates[members[0]])
            buffer = xp.empty(sum(templates[i].size for i in members), dtype)
            offset = 0
            for i in members:
                size = templates[i].size
                self.views[i] = buffer[offset:offset + size].reshape(templates[i].shape)
                offset += size
            self.buffers.append(buffer)

    def pack(self, arrays, scale=1.0):
        """Copy ``arrays`` (None packs zeros) into the buffers, each multiplied by ``scale``."""
        for view, array in zip(self.views, arrays):
            if array is None:
                view[...] = 0
            else:
                get_array_module(view).multiply(_to(array, view), scale, out=view)


def _to(array, like):
    """``array`` on the device of ``like``."""
    return to_device(array, device_of(like))


class DataParallel:
    """What a distributed ``fit`` or ``evaluate`` does beyond the plain loop (see the
    module docstring). ``weight`` is 1, or 0 while a rank trains on a
    :class:`~minidl.distributed.sharding.Weightless` batch."""

    def __init__(self, model, communicator):
        self.model, self.comm = model, communicator
        self.weight = 1.0
        self._gradients = (None, None)  # (the weights' signature, their Buckets)

    @property
    def is_main(self):
        return self.comm.rank == 0

    # --- before the first step --------------------------------------------------------------
    def synchronize(self, shard, batch_size):
        """Build the model if it is not built, check that every rank has the same model and
        the same data, then give every rank rank 0's weights and optimizer state."""
        model = self.model
        if not model.built:
            model.build((None,) + tuple(shard.example_shape()))
        weights, trainable = model.weights, {id(w) for w in model.trainable_weights}
        mine = {'weights': [[w.name, list(w.shape), str(w.dtype)] for w in weights],
                'trainable': sum(id(w) in trainable for w in weights),
                'examples': None if shard.stream else shard.data.count,
                'batch_size': batch_size, 'steps': shard.steps if shard.training else None}
        _check_alike(self.comm.gather_values(mine, 'the shapes of the models'))
        for w, view in zip(weights, self._broadcast([w.data for w in weights], 'the weights')):
            w.data[...] = _to(view, w.data)
        if getattr(model, 'optimizer', None) is not None:
            self._synchronize_optimizer(model.optimizer, model.trainable_weights)

    def _synchronize_optimizer(self, optimizer, weights):
        """Rank 0's optimizer iterations and slots, on every rank (a resumed run has both)."""
        iterations, slots = optimizer.get_state(weights)
        has = self.comm.broadcast_value([bool(state) for state in slots], 'the optimizer slots')
        iterations = self.comm.broadcast_value(iterations, 'the optimizer iterations')
        states = [optimizer.slots(w) if given else {} for w, given in zip(weights, has)]
        views = iter(self._broadcast([state[name] for state in states for name in sorted(state)],
                                     'the optimizer slots'))
        optimizer.set_state(weights, iterations, [
            {name: next(views) for name in sorted(state)} for state in states])

    def _broadcast(self, arrays, what):
        """Rank 0's ``arrays``, as host views of the packed buffers that carried them."""
        buckets = Buckets(arrays, host=True)
        if self.is_main:
            buckets.pack(arrays)
        for buffer in buckets.buffers:
            self.comm.broadcast(buffer, what)
        return buckets.views

    # --- each step -------------------------------------------------------------------------
    def average(self, weights, logs, count):
        """Every rank's gradients and logs averaged over the global batch, each rank weighted
        by its examples; sets the weights' ``.grad`` and returns ``(logs, global count)``."""
        count = count * self.weight
        names = list(logs)
        head = np.array([count] + [count * logs[key] if count else 0.0 for key in names]
                        + [w.grad is not None for w in weights], np.float64)
        self.comm.allreduce(head, 'the batch sizes and metrics')
        total, has_grad = head[0], head[1 + len(names):] > 0
        buckets = self._gradient_buckets(weights)
        buckets.pack([w.grad for w in weights], count / total)
        for buffer in buckets.buffers:
            self.comm.allreduce(buffer, 'the gradients')
        for w, view, has in zip(weights, buckets.views, has_grad):
            w.grad = view if has else None
        return dict(zip(names, (head[1:1 + len(names)] / total).tolist())), float(total)

    def _gradient_buckets(self, weights):
        signature = [(id(w), w.shape, w.dtype, device_of(w.data)) for w in weights]
        if self._gradients[0] != signature:
            self._gradients = signature, Buckets([w.data for w in weights])
        return self._gradients[1]

    def reduce(self, averages, names):
        """Turn the running sums of one rank's evaluation into the global ones, in place."""
        values = np.array([averages.count] + [averages.sums.get(k, 0.0) for k in names])
        self.comm.allreduce(values, 'the validation metrics')
        averages.count, averages.sums = float(values[0]), dict(zip(names, values[1:].tolist()))
        return averages

    def stop(self, flag):
        """Stop training everywhere when any rank's callbacks asked to."""
        return self.comm.any(flag, 'the stop_training flags')

    # --- what only rank 0 does ---------------------------------------------------------------
    def callbacks(self, callbacks):
        """The callbacks this rank runs: all on rank 0; elsewhere those that write no files
        (a ModelCheckpoint or a CSVLogger writes once, from rank 0)."""
        if self.is_main:
            return callbacks
        return [cb for cb in callbacks or () if not getattr(cb, 'writes_files', False)]

    @contextlib.contextmanager
    def running(self):
        """While fit or evaluate runs: this DataParallel is :func:`active`, and on ranks other
        than 0 what they print goes nowhere (rank 0 prints the progress)."""
        _active.append(self)
        try:
            if self.is_main:
                yield self
            else:
                with open(os.devnull, 'w') as nowhere, contextlib.redirect_stdout(nowhere):
                    yield self
        finally:
            _active.pop()


def _check_alike(descriptions):
    """Raise a ValueError, on every rank alike, naming the first way a rank's model or data
    differs from rank 0's: a distributed step would otherwise hang or mix unlike weights."""
    first = descriptions[0]
    for rank, other in enumerate(descriptions[1:], start=1):
        if len(other['weights']) != len(first['weights']):
            raise ValueError(f'distributed: the model on rank {rank} has '
                             f'{len(other["weights"])} weights and the one on rank 0 has '
                             f'{len(first["weights"])}; every process must build the same model')
        for index, (mine, theirs) in enumerate(zip(first['weights'], other['weights'])):
            if mine[1:] != theirs[1:]:
                raise ValueError(
                    f'distributed: weight {index} of the model is {theirs[0]!r} '
                    f'{tuple(theirs[1])} {theirs[2]} on rank {rank} but {mine[0]!r} '
                    f'{tuple(mine[1])} {mine[2]} on rank 0; every process must build the same '
                    f'model')
        for key, what in (('trainable', 'trainable weights'), ('examples', 'training examples'),
                          ('batch_size', 'batch_size'), ('steps', 'steps per epoch')):
            if other[key] != first[key]:
                raise ValueError(f'distributed: rank {rank} has {other[key]} {what} and rank 0 '
                                 f'has {first[key]}; give every process the same model, the '
                                 f'whole data set (minidl shards it) and the same arguments to '
                                 f'fit')
