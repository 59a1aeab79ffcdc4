"""The CUDA kernels: every source compiles with nvcc, and every kernel matches the reference.

The compile tests need only ``nvcc`` (no GPU): each family's source, exactly as the loader hands
it to NVRTC, is compiled for sm_80 and sm_90 with every warning an error, together with every
template instance the loader asks for. The parity tests compare each kernel with
:mod:`minidl.backends.reference` over hypothesis-drawn shapes, strides and paddings, with 32-bit
and with 64-bit indices, on a GPU where there is one and on the CUDA simulator everywhere else
(the ``cuda_device`` and ``index_type`` fixtures of conftest.py).
"""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minidl.backends import cuda, cupy_module, reference

sys.path.insert(0, str(Path(__file__).parent))
from test_kernels import OPTIMIZER_CASES, optimizer_arrays  # noqa: E402 - the cases shared

ARCHITECTURES = ('sm_80', 'sm_90')
DTYPES = (np.float32, np.float64)
TOLERANCE = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}


# ---------------------------------------------------------------------------------------------
# Compilation (nvcc, no GPU needed)
# ---------------------------------------------------------------------------------------------

def test_every_source_file_is_a_loaded_family():
    sources = {entry.name[:-3] for entry in cuda.kernel_dir().iterdir()
               if entry.name.endswith('.cu')}
    assert sources == set(cuda.FAMILIES)


@pytest.mark.skipif(shutil.which('nvcc') is None,
                    reason='nvcc is not on PATH, so the CUDA sources were not compiled')
@pytest.mark.parametrize('family', sorted(cuda.FAMILIES))
def test_source_compiles_without_warnings(family, tmp_path):
    # Taking each instance's address makes nvcc instantiate it, as NVRTC's name expressions do.
    addresses = ',\n'.join(f'    reinterpret_cast<const void*>(&{name})'
                           for name in cuda.name_expressions(family))
    source = tmp_path / f'{family}.cu'
    source.write_text(f'{cuda.kernel_source(family)}\n'
                      f'extern const void* const minidl_instances[] = {{\n{addresses}\n}};\n')
    targets = [flag for arch in ARCHITECTURES
               for flag in ('-gencode', f'arch=compute_{arch[3:]},code={arch}')]
    result = subprocess.run(['nvcc', '-std=c++14', '--Werror', 'all-warnings', '--fatbin',
                             *targets, '-o', str(tmp_path / f'{family}.fatbin'), str(source)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_imports_without_cupy():
    # A None entry in sys.modules makes `import cupy` fail, as on a machine without CuPy.
    code = 'import sys; sys.modules["cupy"] = None; import minidl.backends.cuda'
    subprocess.run([sys.executable, '-c', code], check=True)


# ---------------------------------------------------------------------------------------------
# Parity with the NumPy reference (GPU)
# ---------------------------------------------------------------------------------------------

def to_gpu(array):
    return None if array is None else cupy_module().asarray(array)


def assert_matches(gpu_array, cpu_array, exact=False):
    """The GPU result equals the reference: same dtype and shape, values to dtype tolerance."""
    got = cupy_module().asnumpy(gpu_array)
    assert got.dtype == cpu_array.dtype and got.shape == cpu_array.shape
    if exact:
        np.testing.assert_array_equal(got, cpu_array)
    else:
        np.testing.assert_allclose(got, cpu_array, **TOLERANCE[cpu_array.dtype.type])


@st.composite
def windows(draw, pooling=False):
    """``(x_shape, ksize, stride, pad, dilation)`` with at least one output position.

    Pooling has no dilation and pads smaller than the window on each side (what 'same' padding
    gives), so every window covers part of the input; im2col takes any padding and dilation.
    """
    ksize = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (1, 1) if pooling else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pad = tuple((draw(st.integers(0, k - 1 if pooling else 3)),
                 draw(st.integers(0, k - 1 if pooling else 3))) for k in ksize)
    spatial = tuple(draw(st.integers(max(1, d * (k - 1) + 1 - sum(p)), 9))
                    for k, d, p in zip(ksize, dilation, pad))
    x_shape = (draw(st.integers(1, 2)), *spatial, draw(st.integers(1, 3)))
    return x_shape, ksize, stride, pad, dilation


def random_array(seed, shape, dtype, ties=False, scale=1.0):
    """Normal values, or small integers when ``ties`` so that maxima tie often."""
    rng = np.random.default_rng(seed)
    values = rng.integers(-2, 3, shape) if ties else scale * rng.standard_normal(shape)
    return values.astype(dtype)


seeds = st.integers(0, 2 ** 32 - 1)
on_device = pytest.mark.usefixtures('cuda_device', 'index_type')


@on_device
@pytest.mark.parametrize('dtype', DTYPES)
@given(problem=windows(), seed=seeds)
def test_im2col_and_col2im(dtype, problem, seed):
    x_shape, ksize, stride, pad, dilation = problem
    x = random_array(seed, x_shape, dtype)
    cols = reference.im2col(x, ksize, stride, pad, dilation)
    assert_matches(cuda.im2col(to_gpu(x), ksize, stride, pad, dilation), cols, exact=True)
    dcols = random_array(seed + 1, cols.shape, dtype)
    assert_matches(cuda.col2im(to_gpu(dcols), x_shape, ksize, stride, pad, dilation),
                   reference.col2im(dcols, x_shape, ksize, stride, pad, dilation))


@on_device
@pytest.mark.parametrize('dtype', DTYPES)
@given(problem=windows(pooling=True), seed=seeds, ties=st.booleans())
def test_maxpool2d(dtype, problem, seed, ties):
    x_shape, ksize, stride, pad, _ = problem
    x = random_array(seed, x_shape, dtype, ties=ties)
    y, argmax = reference.maxpool2d_forward(x, ksize, stride, pad)
    y_gpu, argmax_gpu = cuda.maxpool2d_forward(to_gpu(x), ksize, stride, pad)
    assert_matches(y_gpu, y, exact=True)
    assert_matches(argmax_gpu, argmax, exact=True)
    dy = random_array(seed + 1, y.shape, dtype)
    assert_matches(cuda.maxpool2d_backward(to_gpu(dy), argmax_gpu, x_shape, ksize, stride, pad),
                   reference.maxpool2d_backward(dy, argmax, x_shape, ksize, stride, pad))


@on_device
@pytest.mark.parametrize('dtype', DTYPES)
@given(problem=windows(pooling=True), seed=seeds)
def test_avgpool2d(dtype, problem, seed):
    x_shape, ksize, stride, pad, _ = problem
    x = random_array(seed, x_shape, dtype)
    y = reference.avgpool2d_forward(x, ksize, stride, pad)
    assert_matches(cuda.avgpool2d_forward(to_gpu(x), ksize, stride, pad), y)
    dy = random_array(seed + 1, y.shape, dtype)
    assert_matches(cuda.avgpool2d_backward(to_gpu(dy), x_shape, ksize, stride, pad),
                   reference.avgpool2d_backward(dy, x_shape, ksize, stride, pad))


@on_device
@pytest.mark.parametrize('dtype', DTYPES)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 20), st.integers(1, 5)), seed=seeds,
       ties=st.booleans())
def test_global_maxpool(dtype, shape, seed, ties):
    x = random_array(seed, shape, dtype, ties=ties)
    y, argmax = reference.global_maxpool_forward(x)
    y_gpu, argmax_gpu = cuda.global_maxpool_forward(to_gpu(x))
    assert_matches(y_gpu, y, exact=True)
    assert_matches(argmax_gpu, argmax, exact=True)
    dy = random_array(seed + 1, y.shape, dtype)
    assert_matches(cuda.global_maxpool_backward(to_gpu(dy), argmax_gpu, shape[1]),
                   reference.global_maxpool_backward(dy, argmax, shape[1]))


@on_device
def test_max_pooling_past_256_positions_takes_an_int32_argmax():
    # The drawn problems have at most 256 positions (a uint8 argmax); these take the int32 one.
    x = random_array(0, (1, 17, 18, 2), np.float32)
    window = (17, 17), (1, 1), ((0, 0), (0, 0))
    y, argmax = reference.maxpool2d_forward(x, *window)
    y_gpu, argmax_gpu = cuda.maxpool2d_forward(to_gpu(x), *window)
    assert argmax.dtype == np.int32
    assert_matches(argmax_gpu, argmax, exact=True)
    assert_matches(cuda.maxpool2d_backward(y_gpu, argmax_gpu, x.shape, *window),
                   reference.maxpool2d_backward(y, argmax, x.shape, *window))
    x = x.reshape(1, 306, 2)
    y, argmax = reference.global_maxpool_forward(x)
    y_gpu, argmax_gpu = cuda.global_maxpool_forward(to_gpu(x))
    assert argmax.dtype == np.int32
    assert_matches(argmax_gpu, argmax, exact=True)
    assert_matches(cuda.global_maxpool_backward(y_gpu, argmax_gpu, 306),
                   reference.global_maxpool_backward(y, argmax, 306))


@on_device
@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('activation', ['linear', 'relu', 'sigmoid', 'tanh'])
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), bias=st.booleans(),
       seed=seeds)
def test_bias_act(dtype, activation, shape, bias, seed):
    x = random_array(seed, shape, dtype, scale=30.0)  # large |z| probes sigmoid's stability
    b = random_array(seed + 1, shape[-1:], dtype) if bias else None
    y = reference.bias_act_forward(x, b, activation)
    y_gpu = cuda.bias_act_forward(to_gpu(x), to_gpu(b), activation)
    assert_matches(y_gpu, y)
    dy = random_array(seed + 2, shape, dtype)
    assert_matches(cuda.bias_act_backward(to_gpu(dy), to_gpu(y), activation),
                   reference.bias_act_backward(dy, y, activation))


@on_device
@pytest.mark.parametrize('dtype', DTYPES)
@given(shape=st.lists(st.integers(1, 40), min_size=1, max_size=3),
       rate=st.sampled_from([0.0, 0.1, 0.5, 0.9]) | st.floats(0.0, 0.99),
       seed=seeds, step=seeds)
def test_dropout_mask_is_bit_identical(dtype, shape, rate, seed, step):
    assert_matches(cuda.dropout_mask(tuple(shape), rate, seed, step, dtype),
                   reference.dropout_mask(tuple(shape), rate, seed, step, dtype), exact=True)


@on_device
def test_dropout_keeps_an_element_whose_bits_equal_the_threshold():
    # Element 0's bits at seed 0, step 0 are 0x944FB554 (test_kernels.test_dropout_known_mask);
    # this rate makes them the threshold exactly, which keeps the element (bits >= threshold).
    rate = 0x944FB554 / 2 ** 32
    mask = cuda.dropout_mask((2,), rate, 0, 0, np.float64)
    assert_matches(mask, reference.dropout_mask((2,), rate, 0, 0, np.float64), exact=True)
    assert cupy_module().asnumpy(mask)[0] == 1 / (1 - rate)


@on_device
@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('sparse', [True, False], ids=['sparse', 'dense'])
@given(rows=st.integers(1, 40), classes=st.integers(1, 70),
       scale=st.sampled_from([1.0, 10.0, 1e4]), seed=seeds)
def test_softmax_xent(dtype, sparse, rows, classes, scale, seed):
    logits = random_array(seed, (rows, classes), dtype, scale=scale)
    rng = np.random.default_rng(seed + 1)
    if sparse:
        target = rng.integers(0, classes, rows)
    else:
        # Soft labels whose rows need not sum to 1, which the dense gradient must allow for.
        target = (rng.dirichlet(np.ones(classes), rows) * rng.uniform(0.5, 2, (rows, 1)))
        target = target.astype(dtype)
    loss, probs = reference.softmax_xent_forward(logits, target)
    loss_gpu, probs_gpu = cuda.softmax_xent_forward(to_gpu(logits), to_gpu(target))
    assert np.isfinite(cupy_module().asnumpy(loss_gpu)).all()
    assert_matches(loss_gpu, loss)
    assert_matches(probs_gpu, probs)
    g = random_array(seed + 2, (rows,), dtype)
    assert_matches(cuda.softmax_xent_backward(probs_gpu, to_gpu(target), to_gpu(g)),
                   reference.softmax_xent_backward(probs, target, g))


@on_device
@pytest.mark.parametrize('dtype', DTYPES)
@given(ids_shape=st.lists(st.integers(0, 12), min_size=1, max_size=2),
       vocab_size=st.integers(1, 8), width=st.integers(1, 40), seed=seeds)
def test_embedding_backward(dtype, ids_shape, vocab_size, width, seed):
    ids = np.random.default_rng(seed).integers(0, vocab_size, ids_shape)
    dy = random_array(seed + 1, (*ids_shape, width), dtype)
    dW = cuda.embedding_backward(to_gpu(ids), to_gpu(dy), vocab_size)
    assert_matches(dW, reference.embedding_backward(ids, dy, vocab_size))
    again = cuda.embedding_backward(to_gpu(ids), to_gpu(dy), vocab_size)
    assert_matches(again, cupy_module().asnumpy(dW), exact=True)  # deterministic


def run_update(update, arrays, *hyper):
    """Apply ``update(*arrays, *hyper)`` in place on CPU copies and GPU copies; compare all."""
    cpu = [None if a is None else a.copy() for a in arrays]
    gpu = [to_gpu(a) for a in arrays]
    getattr(reference, update)(*cpu, *hyper)
    getattr(cuda, update)(*gpu, *hyper)
    for got, want in zip(gpu, cpu):
        if want is not None:
            assert_matches(got, want)


@on_device
@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('name, kinds, hyper', OPTIMIZER_CASES)
@given(size=st.integers(1, 600), seed=seeds)
def test_optimizer_update(dtype, name, kinds, hyper, size, seed):
    run_update(name, optimizer_arrays(kinds, dtype, seed, (size,)), *hyper)


def test_window_geometry_gives_the_shapes_the_wrappers_allocate():
    win = cuda._window((2, 7, 5, 3), (3, 2), (2, 1), ((1, 0), (0, 1)), (1, 2))
    assert win.input_shape == (2, 7, 5, 3)
    assert win.output_shape == (2, 3, 4, 3)  # (7 + 1 - 3) // 2 + 1, (5 + 1 - 2 - 1) // 1 + 1
    assert tuple(win)[:6] == (2, 7, 5, 3, 3, 4)  # what ``*win`` passes to the kernels
