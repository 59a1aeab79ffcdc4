"""How the ranks share the examples, checked in one process: each rank's shard is made with a
stand-in communicator, rank 0's first, whose broadcasts hand every rank what rank 0 sent."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from minidl import random
from minidl.distributed.sharding import ArrayShard, StreamShard, Weightless, split
from minidl.training import _Arrays


class Ranks:
    """The broadcasts of one job of ``size`` ranks, played one rank after the other."""

    def __init__(self, size):
        self.size, self.sent = size, {}

    def rank(self, rank):
        ranks = self

        class Communicator:
            def broadcast(self, buffer, what, root=0):
                if self.rank == root:
                    ranks.sent[what] = buffer.copy()
                return ranks.sent[what].copy()

            def broadcast_value(self, value, what, root=0):
                if self.rank == root:
                    ranks.sent[what] = value
                return ranks.sent[what]

        comm = Communicator()
        comm.rank, comm.size = rank, self.size
        return comm


def _examples(batch):
    """The example numbers a batch holds (x holds them as values)."""
    return batch.xs[0][:, 0].astype(int).tolist()


@given(st.integers(1, 300), st.integers(1, 40), st.integers(1, 4))
def test_split_cuts_like_array_split(count, parts, _):
    pieces = split(count, parts)
    assert [b - a for a, b in pieces] == [len(p) for p in np.array_split(range(count), parts)]
    assert pieces[0][0] == 0 and pieces[-1][1] == count


@given(count=st.integers(1, 200), batch_size=st.integers(1, 40), size=st.integers(1, 4),
       shuffle=st.booleans())
def test_the_ranks_train_on_the_batches_of_one_process_with_the_global_batch(
        count, batch_size, size, shuffle):
    """Step by step the ranks' pieces put together are the batch one process with batch
    ``batch_size * size`` trains on, from the same seed; a rank without examples trains on its
    previous batch, weightless."""
    if count < size:
        return
    data = _Arrays([np.arange(count, dtype=np.float32)[:, None]], None, ['x'], [])
    random.seed(3)
    single = [_examples(b) for b, _ in data.batches(batch_size * size, shuffle, 'x')]
    ranks, epochs = Ranks(size), []
    random.seed(3)
    for rank in range(size):
        shard = ArrayShard(data, batch_size, shuffle, ranks.rank(rank), True, 'fit')
        epochs.append(list(shard.epoch()))
        assert shard.steps == len(single)
    for step, expected in enumerate(single):
        together = []
        for epoch in epochs:
            batch = epoch[step][0]
            if isinstance(batch, Weightless):
                assert step == len(single) - 1 and len(expected) < size
                assert batch.x is epoch[step - 1][0]
            else:
                together += _examples(batch)
        assert together == expected


@given(count=st.integers(1, 120), batch_size=st.integers(1, 30), size=st.integers(1, 4))
def test_validation_parts_cover_every_example_once(count, batch_size, size):
    data = _Arrays([np.arange(count, dtype=np.float32)[:, None]], None, ['x'], [])
    ranks, seen = Ranks(size), []
    for rank in range(size):
        shard = ArrayShard(data, batch_size, False, ranks.rank(rank), False, 'validation')
        batches = list(shard.epoch())
        assert len(batches) <= shard.steps and all(b.count <= batch_size for b, _, _ in batches)
        seen += [i for batch, _, _ in batches for i in _examples(batch)]
    assert seen == list(range(count))


class Stream:
    """A stream with ``length`` batches per epoch, batch ``p`` holding the number ``p``."""

    def __init__(self, length):
        self.length, self.position, self.seed = length, 0, 11

    def __len__(self):
        return self.length

    def batch_at(self, position):
        return np.array([position]), np.array([0])


@given(length=st.integers(1, 30), size=st.integers(1, 4), steps=st.none() | st.integers(1, 5),
       epochs=st.integers(1, 3))
def test_a_stream_is_dealt_out_in_turn(length, size, steps, epochs):
    """Without steps_per_epoch each epoch is the stream's next ``len`` batches, every one
    trained on once; with it, each rank takes ``steps`` batches, and the stream moves on by
    ``steps * size``."""
    if (steps or 0) * size < size and length < size:
        with pytest.raises(ValueError, match='cannot be shared among'):
            StreamShard(Stream(length), steps, Ranks(size).rank(0), True, 'fit')
        return
    streams = [Stream(length) for _ in range(size)]
    ranks = Ranks(size)
    shards = [StreamShard(s, steps, ranks.rank(r), True, 'fit') for r, s in enumerate(streams)]
    per_epoch = steps * size if steps else length
    for epoch in range(epochs):
        seen = []
        for shard in shards:
            batches = list(shard.epoch())
            assert len(batches) == shard.steps == shards[0].steps
            seen += [int(x[0]) for x, _, _ in batches if not isinstance(x, Weightless)]
        assert sorted(seen) == list(range(epoch * per_epoch, (epoch + 1) * per_epoch))
    assert all(s.position == epochs * per_epoch for s in streams)


def test_a_plain_generator_cannot_be_dealt_out():
    with pytest.raises(ValueError, match='a plain generator \\(generator\\) does not allow'):
        StreamShard((b for b in []), None, Ranks(2).rank(0), True, 'fit')


def test_too_few_examples_for_the_ranks_is_an_error():
    data = _Arrays([np.zeros((2, 1), np.float32)], None, ['x'], [])
    with pytest.raises(ValueError, match=r'fit: 2 training example\(s\) cannot be shared among 3'):
        ArrayShard(data, 4, True, Ranks(3).rank(0), True, 'fit')


@pytest.mark.parametrize('kind', ['flow_from_directory', 'image_dataset_from_directory'])
def test_image_folders_are_dealt_out_with_rank_0s_shuffle(tmp_path, kind):
    """10 images, each of its own grey level, in batches of 3 (4 batches: 2 for each rank):
    every image once per epoch over the ranks, a new order each epoch, although each rank's
    stream drew its own seed."""
    from PIL import Image

    from minidl.preprocessing import image_dataset_from_directory
    from minidl.preprocessing.image import ImageDataGenerator
    for i in range(10):
        folder = tmp_path / 'data' / ('ab'[i % 2])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((4, 4), 20 * i + 10, np.uint8)).save(folder / f'{i}.png')

    def stream():
        if kind == 'flow_from_directory':
            return ImageDataGenerator().flow_from_directory(
                tmp_path / 'data', target_size=(4, 4), color_mode='grayscale', batch_size=3,
                seed=None)
        return image_dataset_from_directory(tmp_path / 'data', image_size=(4, 4),
                                            color_mode='grayscale', batch_size=3)
    ranks = Ranks(2)
    shards = [StreamShard(stream(), None, ranks.rank(r), True, 'fit') for r in range(2)]
    orders = []
    for _ in range(2):
        seen = [int(x[j, 0, 0, 0]) for shard in shards for x, _, _ in shard.epoch()
                for j in range(len(x))]
        assert sorted(seen) == [20 * i + 10 for i in range(10)]
        orders.append(seen)
    assert orders[0] != orders[1]
