"""Optimizers against Keras: the same weights, gradients and hyperparameters for five steps in
minidl and in Keras 3 and tf-keras give the same weights, for every optimizer, option (clipping,
weight decay, momentum, centered, amsgrad) and schedule in ``fixtures/make_optimizers.py``.

The Keras-free tests compare with the trajectories that script saved; the ``interop`` ones run
Keras live, where it is installed (in a judge environment, ``$T`` this file)::

    KERAS_BACKEND=torch PYTHONPATH=. /tmp/k3/bin/python -m pytest -q -m interop $T
    PYTHONPATH=. /tmp/tfk/bin/python -m pytest -q -m interop $T

The measure is the largest difference of the total change of the weights, relative to the
largest change Keras made (about 0.05 in five steps). Both sides round weights of size up to 3.8
to float32 at every step, in a different order: a few units in the last place (2.4e-7 each)
come to 1e-5 of the change, so the bound is 3e-5; a wrong rule or order is 1e-3 or more.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

from minidl import optimizers
from minidl.autograd import Tensor

sys.path.insert(0, str(Path(__file__).parent / 'fixtures'))
import make_optimizers as cases  # noqa: E402

TOLERANCE = 3e-5


def minidl_trajectory(class_name, kwargs):
    """minidl's weights after ``cases.STEPS`` steps of :func:`cases.problem`."""
    weights, steps = cases.problem()
    params = [Tensor(w.copy(), requires_grad=True) for w in weights]
    optimizer = cases.build(optimizers, class_name, kwargs)
    for grads in steps:
        for param, g in zip(params, grads):
            param.grad = g
        optimizer.step(params)
    return [param.data for param in params]


def change_difference(got, want):
    """``max |(got - w0) - (want - w0)| / max |want - w0|`` over both weights."""
    start = cases.problem()[0]
    got, want = ([np.asarray(w, np.float64) - w0 for w, w0 in zip(ws, start)]
                 for ws in (got, want))
    worst = max(np.max(np.abs(g - w)) for g, w in zip(got, want))
    return worst / max(np.max(np.abs(w)) for w in want)


@pytest.mark.parametrize('library', ['keras3', 'tf_keras'])
@pytest.mark.parametrize('case', list(cases.CASES))
def test_minidl_follows_the_saved_keras_trajectory(library, case):
    class_name, kwargs = cases.CASES[case]
    want = cases.reference(library)[case]
    assert change_difference(minidl_trajectory(class_name, kwargs), want) <= TOLERANCE


def test_the_fixture_holds_every_case_of_both_libraries():
    for library in ('keras3', 'tf_keras'):
        assert list(cases.reference(library)) == list(cases.CASES)


@pytest.fixture(scope='module', params=['keras3', 'tf_keras'])
def keras(request):
    if request.param == 'tf_keras':
        return pytest.importorskip('tf_keras')
    keras = pytest.importorskip('keras')
    if not keras.__version__.startswith('3.'):
        pytest.skip(f'keras {keras.__version__} is not Keras 3')
    return keras


@pytest.mark.interop
@pytest.mark.parametrize('case', list(cases.CASES))
def test_minidl_follows_keras_live(keras, case):
    class_name, kwargs = cases.CASES[case]
    want = cases.keras_trajectory(keras, class_name, kwargs)
    assert change_difference(minidl_trajectory(class_name, kwargs), want) <= TOLERANCE
