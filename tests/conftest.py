"""Shared fixtures: the array backends, float64 gradient checking, the Keras libraries of the
live checks, and the hypothesis profile.

Tests marked ``gpu`` are skipped where CuPy or a CUDA device is missing; the ``xp`` fixture
runs a test once per array module present.
"""
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

import minidl
from minidl.backends import cupy_module, gpu_available, kernels

# The examples and benchmarks are scripts, not packages; tests import them as modules
# (mnist_convnet, conv_speed, ...).
for scripts in ('examples', 'benchmarks'):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / scripts))

settings.register_profile('minidl', deadline=None, max_examples=20, derandomize=True)
settings.load_profile('minidl')

_gradchecks = [0]


def pytest_collection_modifyitems(config, items):
    if gpu_available():
        return
    skip = pytest.mark.skip(reason='needs CuPy and a CUDA device (pip install minidl[gpu])')
    for item in items:
        if 'gpu' in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f'minidl: {_gradchecks[0]} float64 gradient checks passed')


@pytest.fixture(params=['numpy', pytest.param('cupy', marks=pytest.mark.gpu)])
def xp(request):
    """The array module under test: numpy, and cupy where a GPU is present."""
    return cupy_module() if request.param == 'cupy' else np


@pytest.fixture(params=kernels.CPU_KERNELS)
def cpu_kernels(request):
    """Run the test once on each CPU kernel set (Numba, and the NumPy reference)."""
    previous = kernels.set_cpu_kernels(request.param)
    yield request.param
    kernels.set_cpu_kernels(previous)


@pytest.fixture(scope='session')
def check_grad():
    """``check_grad(fn, *inputs)``: float64 gradcheck of ``fn`` w.r.t. every input given.

    Arrays become new float64 tensors; tensors (a layer's weights, say) are checked in place.
    """
    def run(fn, *arrays, **options):
        inputs = [a if isinstance(a, minidl.Tensor) else
                  minidl.Tensor(a.astype(np.float64), requires_grad=True) for a in arrays]
        assert minidl.gradcheck(fn, inputs, **options)
        _gradchecks[0] += 1
    return run


@pytest.fixture(scope='session')
def keras_or_skip():
    """``keras_or_skip(name)``: tf-keras (``'tf_keras'``) or Keras 3 (``'keras'``, on the torch
    backend), or a skip."""
    def load(name):
        if name == 'keras':
            os.environ.setdefault('KERAS_BACKEND', 'torch')
            keras = pytest.importorskip('keras')
            if not keras.__version__.startswith('3.'):
                pytest.skip(f'keras {keras.__version__} is not Keras 3')
            return keras
        return pytest.importorskip(name)
    return load
