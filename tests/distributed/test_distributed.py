"""Data-parallel training on 2 MPI processes, started by the tests with mpiexec.

Each test writes a script for the ranks; rank 0 writes what it measured as JSON, which the test
reads. The equivalence tests compare a 2-rank run with batch 32 per rank against one process
with batch 64 on the same examples (same seed, so the same shuffles).
"""
import json
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# The model and data every script uses: a small convnet, 5 classes, no dropout.
PRELUDE = """
import json, os, sys
import numpy as np
from minidl import callbacks, distributed, layers, models, optimizers, random

def net(optimizer, classes=5):
    random.seed(1)
    model = models.Sequential([
        layers.Conv2D(4, 3, activation='relu', input_shape=(8, 8, 1)),
        layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(8, activation='relu'),
        layers.Dense(classes, activation='softmax')])
    model.compile(optimizer, 'categorical_crossentropy', ['acc'])
    return model

def data(count):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(count, 8, 8, 1)).astype(np.float32)
    return x, np.eye(5, dtype=np.float32)[rng.integers(0, 5, count)]

comm = distributed.init()

def report(value):
    if distributed.is_main():
        with open('report.json', 'w') as file:
            json.dump(value, file)
"""


def _report(tmp_path):
    return json.loads((tmp_path / 'report.json').read_text())


def test_two_ranks_step_like_one_process_with_the_double_batch(run_ranks, tmp_path):
    """SGD with momentum and RMSprop, shuffled, with validation; 200 examples end in a short
    global batch (8: 4 per rank), 129 in one of a single example (rank 1 trains weightless)."""
    result = run_ranks(PRELUDE, """
    out = {}
    for count in (200, 129):
        x, y = data(count)
        for name, make in (('sgd', lambda: optimizers.SGD(0.05, momentum=0.9)),
                           ('rmsprop', lambda: optimizers.RMSprop(1e-3))):
            runs = []
            for distributed_run in (True, False):
                if not distributed_run and not distributed.is_main():
                    continue
                model = net(make())
                random.seed(7)
                history = model.fit(x, y, batch_size=32 if distributed_run else 64, epochs=3,
                                    validation_data=(x[:50], y[:50]), verbose=0,
                                    distributed=distributed_run)
                evaluated = model.evaluate(x, y, batch_size=16, verbose=0,
                                           distributed=distributed_run)
                runs.append((model.get_weights(), history.history, evaluated))
            if distributed.is_main():
                (w2, h2, e2), (w1, h1, e1) = runs
                out[f'{name}_{count}'] = {
                    'weights': max(float(np.abs(a - b).max()) for a, b in zip(w1, w2)),
                    'scale': max(float(np.abs(a).max()) for a in w1),
                    'history': max(abs(a - b) for k in h1 for a, b in zip(h1[k], h2[k])),
                    'evaluate': max(abs(a - b) for a, b in zip(e1, e2)),
                    'keys': sorted(h1) == sorted(h2)}
    report(out)
    """, timeout=240)
    out = _report(tmp_path)
    assert sorted(out) == ['rmsprop_129', 'rmsprop_200', 'sgd_129', 'sgd_200']
    for run, figures in out.items():
        assert figures['keys'], run
        assert figures['weights'] <= 1e-5 * max(1.0, figures['scale']), (run, figures)
        assert figures['history'] <= 1e-5, (run, figures)
        assert figures['evaluate'] <= 1e-5, (run, figures)
    assert result.stdout.count('Epoch 1/') == 0  # verbose=0 everywhere


def test_only_rank_0_prints_and_writes_files_and_callbacks_see_global_logs(run_ranks,
                                                                             tmp_path):
    run_ranks(PRELUDE, """
    class Recorded(callbacks.ModelCheckpoint):
        def _save(self, path, epoch):
            with open('saves.txt', 'a') as file:
                file.write(f'{distributed.rank()} {path}\\n')
            super()._save(path, epoch)

    class Logs(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.seen = getattr(self, 'seen', []) + [logs]

    x, y = data(100)
    model, logs = net(optimizers.RMSprop(1e-3)), Logs()
    model.fit(x, y, batch_size=16, epochs=2, validation_split=0.2, distributed=True,
              callbacks=[Recorded('model-{epoch}.h5', save_best_only=False),
                         callbacks.CSVLogger('log.csv'), logs])
    every = comm.gather_values(logs.seen, 'the logs')
    report({'same_logs': every[0] == every[1], 'logs': every[0]})
    """)
    out = _report(tmp_path)
    assert out['same_logs'] and len(out['logs']) == 2
    assert (tmp_path / 'saves.txt').read_text().split('\n')[:-1] == [
        '0 model-1.h5', '0 model-2.h5']
    rows = (tmp_path / 'log.csv').read_text().strip().split('\n')
    assert len(rows) == 3 and rows[0].startswith('epoch,acc,loss,val_acc,val_loss')


def test_a_stream_is_dealt_out_so_each_example_is_seen_once_per_epoch(run_ranks, tmp_path):
    """A shuffled flow() iterator without a seed (each rank would draw its own): 100 images in
    batches of 16 make 7 batches, 4 for rank 0 and 3 for rank 1, which trains its last step
    weightless."""
    run_ranks(PRELUDE, """
    from minidl.preprocessing.image import ImageDataGenerator
    from minidl.preprocessing.iterators import NumpyArrayIterator

    seen = []
    class Recording(NumpyArrayIterator):
        def _load(self, indices, rng):
            seen.append(indices.tolist())
            return super()._load(indices, rng)

    x, y = data(100)
    stream = Recording(x, y, ImageDataGenerator(), batch_size=16, shuffle=True, prefetch=0)
    model = net(optimizers.SGD(0.01))
    history = model.fit(stream, epochs=3, verbose=0, distributed=True)
    every = comm.gather_values(seen, 'the batches seen')
    report({'seen': every, 'position': stream.position, 'steps': len(history.history['loss'])})
    """)
    out = _report(tmp_path)
    rank0, rank1 = out['seen']
    # per epoch rank 0 loads batches 0, 2, 4, 6 (the short one) and rank 1 loads 1, 3, 5, then
    # repeats its last, weightless, without loading it again
    assert [len(b) for b in rank0] == [16, 16, 16, 4] * 3 and [len(b) for b in rank1] == [16] * 9
    for epoch in range(3):
        examples = [i for batch in rank0[4 * epoch:4 * epoch + 4] + rank1[3 * epoch:3 * epoch + 3]
                    for i in batch]
        assert sorted(examples) == list(range(100)), epoch
    assert rank0[0] != rank0[4]  # reshuffled each epoch
    assert out['position'] == 21 and out['steps'] == 3


@pytest.mark.parametrize('how', ['raises', 'dies'])
def test_a_rank_that_fails_ends_the_job_instead_of_hanging(run_ranks, how):
    start = time.perf_counter()
    result = run_ranks(PRELUDE, f"""
    class Fail(callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            if distributed.rank() == 1 and batch == 2:
                if {how!r} == 'raises':
                    raise RuntimeError('the disk is full')
                os.kill(os.getpid(), 9)

    x, y = data(400)
    net(optimizers.SGD(0.01)).fit(x, y, batch_size=16, epochs=5, verbose=0,
                                  callbacks=[Fail()], distributed=True)
    """, env={'MINIDL_DISTRIBUTED_TIMEOUT': '30'}, timeout=90, check=False)
    assert result.returncode != 0
    assert time.perf_counter() - start < 60
    if how == 'raises':
        assert 'RuntimeError: the disk is full' in result.stderr
        assert 'rank 1 of 2: stopped by the RuntimeError above' in result.stderr


def test_a_rank_that_stops_early_makes_the_others_time_out_with_a_message(run_ranks):
    result = run_ranks(PRELUDE, """
    if distributed.rank() == 1:
        sys.exit(0)
    x, y = data(100)
    net(optimizers.SGD(0.01)).fit(x, y, batch_size=16, verbose=0, distributed=True)
    """, env={'MINIDL_DISTRIBUTED_TIMEOUT': '3'}, timeout=60, check=False)
    assert result.returncode != 0
    assert 'rank 0 of 2: waited 3 s in the gathering of the shapes of the models' in result.stderr


def test_models_that_differ_between_ranks_are_an_error_naming_the_weight(run_ranks):
    result = run_ranks(PRELUDE, """
    x, y = data(100)
    model = net(optimizers.SGD(0.01), classes=5 if distributed.rank() == 0 else 6)
    try:
        model.fit(x, y[:, :5] if distributed.rank() == 0 else np.pad(y, ((0, 0), (0, 1))),
                  verbose=0, distributed=True)
    except ValueError as error:
        print(f'rank {distributed.rank()}: {error}')
    """)
    for rank in (0, 1):
        assert (f"rank {rank}: distributed: weight 4 of the model is 'dense_1/kernel' (8, 6) "
                f"float32 on rank 1 but 'dense_1/kernel' (8, 5) float32 on rank 0"
                in result.stdout), result.stdout


def test_data_of_different_sizes_on_the_ranks_is_an_error(run_ranks):
    result = run_ranks(PRELUDE, """
    x, y = data(100 + distributed.rank())
    try:
        net(optimizers.SGD(0.01)).fit(x, y, verbose=0, distributed=True)
    except ValueError as error:
        print(f'rank {distributed.rank()}: {error}')
    """)
    assert ('rank 1: distributed: rank 1 has 101 training examples and rank 0 has 100; give '
            'every process the same model, the whole data set (minidl shards it)'
            in result.stdout), result.stdout


def test_the_mnist_example_trains_on_two_processes(run_ranks, tmp_path):
    """``mpiexec -n 2 python examples/mnist_convnet.py --distributed``, on a small subset: rank
    0 alone prints the summary, the progress and the test accuracy, and saves the model."""
    script = REPO / 'examples' / 'mnist_convnet.py'
    result = run_ranks(f"""
    import runpy, sys
    sys.argv = [{str(script)!r}, '--distributed', '--subset', '1200', '--epochs', '1',
                '--verbose', '2', '--out', 'run']
    runpy.run_path(sys.argv[0], run_name='__main__')
    """)
    assert result.stdout.count('Total params: 93,322') == 1
    assert result.stdout.count('Epoch 1/1') == 1 and result.stdout.count('test accuracy') == 1
    assert '17/17' in result.stdout  # 1,080 images in global batches of 64
    assert (tmp_path / 'run' / 'model.h5').exists()
