"""Byte-mutation property tests of the h5 readers: a damaged file minidl wrote loads its
original weights or raises WeightFileError, quickly and within twice the weight bytes.

A hang inside libhdf5 holds the GIL, so nothing in the test process could interrupt it: each
property runs in a child interpreter under a timeout, and a hang fails the test instead of
stalling the suite. The child runs this same module (``python test_h5_mutation.py <name>``).
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

import mutation
from minidl import layers, models

HERE = Path(__file__).parent
EXAMPLES = {'weights': 160, 'model': 120}


def tiny_model():
    """A convnet with every kind of weight the layout stores: kernels, biases, batch-norm
    statistics; compiled with Adam so that a saved model carries optimizer slots too."""
    model = models.Sequential([
        layers.Conv2D(3, 3, input_shape=(5, 5, 2), name='conv'),
        layers.BatchNormalization(name='bn'), layers.Flatten(),
        layers.Dense(2, name='out')])
    model.set_weights([np.linspace(-1, 1, w.size, dtype=np.float32).reshape(w.shape) + k
                       for k, w in enumerate(model.get_weights())])
    model.compile('adam', 'mse')
    model.train_on_batch(np.ones((2, 5, 5, 2), np.float32), np.zeros((2, 2), np.float32))
    return model


def load_weights(path):
    model = tiny_model()
    model.load_weights(path)
    return model.get_weights()


def load_model(path):
    return models.load_model(path).get_weights()


def fuzz(kind):
    """Mutate a file written by ``save_weights`` (kind 'weights') or ``save`` ('model') and
    read it back ``EXAMPLES[kind]`` times."""
    source, read = tiny_model(), {'weights': load_weights, 'model': load_model}[kind]
    original = source.get_weights()
    weight_bytes = sum(w.nbytes for w in original)
    with tempfile.TemporaryDirectory() as folder:
        good = Path(folder) / 'good.h5'
        (source.save_weights if kind == 'weights' else source.save)(good)
        data = good.read_bytes()

        @settings(max_examples=EXAMPLES[kind], derandomize=True, deadline=None, database=None)
        @given(mutation.edits(len(data)))
        def check(changes):
            mutation.check_read(read, Path(folder) / 'mutated.h5',
                                mutation.apply_edits(data, changes), original, weight_bytes)
        check()


@pytest.mark.parametrize('kind', list(EXAMPLES))
def test_mutated_files_load_their_weights_or_raise_weight_file_error(kind):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parents[1]), str(HERE)]))
    try:
        done = subprocess.run([sys.executable, __file__, kind], env=env, capture_output=True,
                              text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f'the {kind} fuzz loop did not finish in 60 s (a hang inside libhdf5?)')
    assert done.returncode == 0, done.stdout + done.stderr


if __name__ == '__main__':
    fuzz(sys.argv[1])
