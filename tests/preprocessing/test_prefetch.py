"""The prefetch threads: order, bounded look-ahead, errors, and above all a clean shutdown."""
import gc
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from minidl.preprocessing import image_dataset_from_directory
from minidl.preprocessing.image import ImageDataGenerator
from minidl.preprocessing.prefetch import Prefetcher


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name.startswith('minidl-prefetch')]


def wait_until_no_prefetch_threads(seconds=5.0):
    deadline = time.monotonic() + seconds
    while prefetch_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    return not prefetch_threads()


class Source:
    """A batch source whose steps take a little, uneven time, and which records its calls."""

    def __init__(self, fail_at=None):
        self.calls, self.fail_at = [], fail_at

    def produce(self, step):
        self.calls.append(step)
        time.sleep(0.001 * (step % 3))
        if step == self.fail_at:
            raise RuntimeError(f'step {step} failed')
        return step * 10


def test_batches_come_in_order_from_several_workers():
    source = Source()
    with Prefetcher(source.produce, start=5, stop=25, depth=4, workers=3) as batches:
        assert list(batches) == [10 * step for step in range(5, 25)]
    assert not prefetch_threads()


def test_look_ahead_is_bounded_by_depth():
    source = Source()
    with Prefetcher(source.produce, depth=3, workers=2) as batches:
        next(batches)
        time.sleep(0.05)
        assert len(source.calls) == 4  # the one consumed and three ahead


def test_an_error_is_raised_for_its_own_step_and_the_stream_goes_on():
    source = Source(fail_at=1)  # held here: the prefetcher only holds it weakly
    with Prefetcher(source.produce, depth=2) as batches:
        assert next(batches) == 0
        with pytest.raises(RuntimeError, match='step 1 failed'):
            next(batches)
        assert next(batches) == 20


def test_the_owner_of_produce_going_away_stops_the_prefetcher():
    Prefetcher(Source().produce)  # nothing else holds the Source
    assert wait_until_no_prefetch_threads()


def test_a_closed_prefetcher_says_so():
    source = Source()
    batches = Prefetcher(source.produce, stop=100)
    batches.close()
    assert not batches.alive()
    with pytest.raises(RuntimeError, match='closed'):
        for _ in range(100):
            next(batches)


def test_close_ends_the_threads_of_an_iterator():
    it = ImageDataGenerator().flow(np.zeros((8, 4, 4, 1)), batch_size=2, workers=2)
    next(it)
    assert len(prefetch_threads()) == 2
    it.close()
    assert not prefetch_threads()
    next(it)  # iterating again restarts them
    assert prefetch_threads()
    it.close()


def test_dropping_an_iterator_ends_its_threads():
    it = ImageDataGenerator().flow(np.zeros((8, 4, 4, 1)), batch_size=2)
    next(it)
    del it
    gc.collect()
    assert wait_until_no_prefetch_threads()


def test_leaving_a_dataset_loop_early_ends_its_threads(tmp_path):
    from PIL import Image
    (tmp_path / 'k').mkdir()
    for i in range(6):
        Image.new('RGB', (5, 5)).save(tmp_path / 'k' / f'{i}.png')
    ds = image_dataset_from_directory(tmp_path, image_size=(5, 5), batch_size=1)
    for _ in ds:
        break
    gc.collect()
    assert wait_until_no_prefetch_threads()


def test_the_program_exits_with_a_prefetching_iterator_still_open():
    script = ('import numpy as np\n'
              'from minidl.preprocessing.image import ImageDataGenerator\n'
              'it = ImageDataGenerator(rotation_range=10).flow(np.zeros((64, 8, 8, 1)), '
              'batch_size=2, workers=2)\n'
              'next(it)\n'
              'print("done")\n')
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == 'done\n' and 'Traceback' not in result.stderr
