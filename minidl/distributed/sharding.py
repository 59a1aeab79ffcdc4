"""Which examples each rank trains and validates on.

Every rank holds the whole data set (or the same generator) and takes its own part of it:

* **Arrays, training.** Each epoch the examples are put in one order that every rank shares
  (rank 0 draws it from :func:`minidl.random.generator` and broadcasts it) and cut into global
  batches of ``batch_size * size``; rank ``r`` takes the ``r``-th of ``size`` near-equal
  pieces of each. A 2-rank run with batch 32 therefore steps through exactly the batches of a
  1-process run with batch 64 drawn from the same seed.
* **Batch streams, training** (``flow``, ``flow_from_directory``,
  ``image_dataset_from_directory``, or any object with ``__getitem__`` and ``__len__``): the
  stream's batches are dealt out in turn, batch ``k * size + r`` of the epoch to rank ``r`` at
  step ``k``; every rank first takes rank 0's seed and position, so all agree on the shuffle.
* **Validation and evaluation**: rank ``r`` takes the ``r``-th contiguous part of the arrays,
  or every ``size``-th batch of a stream from batch ``r``; the sums of the metrics are added up
  once, at the end.

Every rank must take the same number of training steps, since each step ends in a collective.
Where the last global batch has fewer pieces than ranks, a rank left without examples trains
on its previous batch with weight 0 (:class:`Weightless`): it joins the step's collectives and
adds nothing to the gradients or the metrics. A plain generator cannot be dealt out like this
(only its own code knows what it yields next), so it is refused.
"""
import math

import numpy as np

from minidl import random
from minidl.preprocessing.iterators import batch_size_of
from minidl.preprocessing.prefetch import Prefetcher


def split(count, parts):
    """The ``(start, stop)`` of ``parts`` contiguous pieces of ``range(count)``, the first
    ``count % parts`` of them one longer (NumPy's ``array_split``)."""
    size, extra = divmod(count, parts)
    stops = np.cumsum([size + (i < extra) for i in range(parts)])
    return list(zip([0, *stops[:-1]], stops))


class Weightless:
    """A rank's previous batch ``(x, y)``, trained on again with weight 0 because this step
    has no examples for the rank."""

    def __init__(self, x, y):
        self.x, self.y = x, y


class ArrayShard:
    """The batches of one rank over an ``_Arrays`` data set (see the module docstring).

    ``epoch()`` yields ``(batch, None, where)`` as ``training._Source.epoch`` does, a batch
    being an ``_Arrays`` or, in training, a :class:`Weightless`; ``where`` names the examples
    for errors.
    """

    stream = False

    def __init__(self, data, batch_size, shuffle, communicator, training, purpose):
        self.data, self.batch_size, self.shuffle = data, batch_size, shuffle
        self.comm, self.training, self.purpose = communicator, training, purpose
        self.name = 'the validation data' if purpose == 'validation' else 'x'
        if training and data.count < communicator.size:
            raise ValueError(f'fit: {data.count} training example(s) cannot be shared among '
                             f'{communicator.size} processes; each needs one at least')
        per_rank = math.ceil(data.count / communicator.size)
        self.steps = (math.ceil(data.count / (batch_size * communicator.size)) if training
                      else math.ceil(per_rank / batch_size))

    def example_shape(self):
        return self.data.xs[0].shape[1:]

    def epoch(self):
        if not self.training:
            start, stop = split(self.data.count, self.comm.size)[self.comm.rank]
            for a in range(start, stop, self.batch_size):
                b = min(a + self.batch_size, stop)
                yield self.data.subset(slice(a, b)), None, f'examples {a}-{b - 1} of {self.name}'
            return
        order = self._order()
        block, previous = self.batch_size * self.comm.size, None
        for step in range(self.steps):
            examples = order[step * block:(step + 1) * block]
            a, b = split(len(examples), self.comm.size)[self.comm.rank]
            if b == a:
                yield Weightless(previous, None), None, f'no examples of {self.name}'
                continue
            if self.shuffle:
                previous = self.data.subset(examples[a:b])
                where = f'{b - a} examples shuffled from {self.name}'
            else:
                previous = self.data.subset(slice(step * block + a, step * block + b))
                where = f'examples {step * block + a}-{step * block + b - 1} of {self.name}'
            yield previous, None, where

    def _order(self):
        """The epoch's order of all the examples, the same on every rank."""
        if not self.shuffle:
            return np.arange(self.data.count)
        order = (random.generator().permutation(self.data.count) if self.comm.rank == 0
                 else np.empty(self.data.count, np.int64))
        return self.comm.broadcast(order.astype(np.int64), 'the order of the examples')


class StreamShard:
    """The batches of one rank over a stream of batches (see the module docstring).

    ``steps``: the training steps per epoch asked for (the stream's batches per epoch divided
    among the ranks when None), or the validation batches of one pass. ``epoch()`` yields
    ``(x, y, '')`` like ``training._Source.epoch``.
    """

    stream = True

    def __init__(self, source, steps, communicator, training, purpose):
        if not (hasattr(source, 'batch_at') or (hasattr(source, '__getitem__')
                                                and hasattr(source, '__len__'))):
            raise ValueError(f'{purpose}: distributed training deals the batches of a stream '
                             f'out among the processes by index, which a plain generator '
                             f'({type(source).__name__}) does not allow; give arrays, a '
                             f'flow()/flow_from_directory() iterator, an '
                             f'image_dataset_from_directory() dataset or an object with '
                             f'__getitem__ and __len__')
        self.source, self.comm, self.training = source, communicator, training
        self.purpose = purpose
        self.length = len(source)
        size = communicator.size
        if training:
            self.total = steps * size if steps else self.length
            if self.total < size:
                raise ValueError(f'fit: {self.total} batch(es) per epoch cannot be shared among '
                                 f'{size} processes; each needs one at least')
            self.steps = steps or math.ceil(self.total / size)
        else:
            self.total = steps or self.length
            self.steps = len(range(communicator.rank, self.total, size))
        if training and hasattr(source, 'seed'):
            source.seed = communicator.broadcast_value(source.seed, 'the seed of the batches')

    def example_shape(self):
        return np.shape(_pair(self._batch(self._start()))[0])[1:]

    def epoch(self):
        start, size = self._start(), self.comm.size
        positions = [start + k * size + self.comm.rank for k in range(self.steps)]
        self._positions = [p if p < start + self.total else None for p in positions]
        depth = getattr(self.source, 'prefetch', 0)
        try:
            if depth:
                batches = Prefetcher(self._produce, stop=self.steps, depth=depth,
                                     workers=getattr(self.source, 'workers', 1))
            else:
                batches = map(self._produce, range(self.steps))
            previous = (None, None)
            for batch in batches:
                if batch is None or not batch_size_of(batch):
                    if self.training:
                        yield Weightless(*previous), None, ''
                    continue
                previous = _pair(batch)
                yield (*previous, '')
        finally:
            if depth:
                batches.close()
        if hasattr(self.source, 'position'):
            self.source.position = start + self.total

    def _start(self):
        """Where this pass starts in the stream: rank 0's position, which every rank takes."""
        if not hasattr(self.source, 'position'):
            return 0
        return self.comm.broadcast_value(self.source.position, 'the position of the stream')

    def _produce(self, step):
        position = self._positions[step]
        return None if position is None else self._batch(position)

    def _batch(self, position):
        if hasattr(self.source, 'batch_at'):
            return self.source.batch_at(position)
        return self.source[position % self.length]


def _pair(batch):
    """``(x, y)`` of a batch given as ``(x, y)``, ``(x,)`` or ``x``."""
    if isinstance(batch, (tuple, list)):
        return batch[0], batch[1] if len(batch) > 1 else None
    return batch, None
