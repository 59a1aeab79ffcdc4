"""The CUDA simulator itself: barriers, warp shuffles, shared memory, the checks a GPU does not
make, the CuPy surface, and minidl's whole GPU path (a training step) on top of it.

The kernel parity tests live in test_cuda.py and run on the simulator through its fixtures.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

import minidl
from minidl import backends, optimizers
from minidl.backends import cuda, cuda_simulator
from minidl.backends.cuda_simulator import cupy as sim

pytestmark = pytest.mark.skipif(cuda_simulator.compiler() is None,
                                reason='the CUDA simulator needs a C++ compiler (g++)')

KERNELS = r'''
// Sums each block's values in static shared memory; barrier == 0 leaves the barriers out.
template <typename T>
__global__ void block_sum(const T* x, T* out, int barrier) {
    __shared__ T partial[256];
    const int t = threadIdx.x;
    partial[t] = x[blockIdx.x * blockDim.x + t];
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (barrier) {
            __syncthreads();
        }
        if (t < half) {
            partial[t] += partial[t + half];
        }
    }
    if (t == 0) {
        out[blockIdx.x] = partial[0];
    }
}

// Reverses each block's values through dynamic shared memory.
template <typename T>
__global__ void reverse_blocks(const T* x, T* y) {
    extern __shared__ unsigned char bytes[];
    T* tile = reinterpret_cast<T*>(bytes);
    const int base = blockIdx.x * blockDim.x;
    tile[threadIdx.x] = x[base + threadIdx.x];
    __syncthreads();
    y[base + threadIdx.x] = tile[blockDim.x - 1 - threadIdx.x];
}

// out[k * n + t] is lane t's result of shuffle k (idx, up, down, xor) within `width` lanes.
template <typename T>
__global__ void shuffles(const T* x, T* out, int width) {
    const int n = blockDim.x * gridDim.x;
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    const T v = x[t];
    out[t] = __shfl_sync(0xFFFFFFFFu, v, (threadIdx.x * 7 + 3) % 32, width);
    out[n + t] = __shfl_up_sync(0xFFFFFFFFu, v, 3, width);
    out[2 * n + t] = __shfl_down_sync(0xFFFFFFFFu, v, 5, width);
    out[3 * n + t] = __shfl_xor_sync(0xFFFFFFFFu, v, 6, width);
}

// y[i + write_shift] = x[i + read_shift] for i < n: shifts of 0 stay inside both arrays.
template <typename T>
__global__ void copy_shifted(const T* x, T* y, long long n, long long read_shift,
                             long long write_shift) {
    const long long stride = 1LL * blockDim.x * gridDim.x;
    for (long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        y[i + write_shift] = x[i + read_shift];
    }
}

// Writes through a const pointer, which a GPU would let pass.
__global__ void write_const(const float* x) {
    const_cast<float*>(x)[threadIdx.x] = 1.0f;
}

// Broken synchronisation, one way per `how`: 0 half the block exits before a barrier; 1 odd
// threads wait at a barrier, even ones at a shuffle; 2 a shuffle reads a lane its mask omits.
__global__ void broken_sync(float* x, int how) {
    const int t = threadIdx.x;
    if (how == 0) {
        if (t < 16) {
            return;
        }
        __syncthreads();
    } else if (how == 1) {
        if (t % 2) {
            __syncthreads();
        } else {
            x[t] = __shfl_xor_sync(0x55555555u, x[t], 2);
        }
    } else if (t < 16) {
        x[t] = __shfl_xor_sync(0x0000FFFFu, x[t], 16);
    }
}
'''
NAMES = ['block_sum<float>', 'block_sum<double>', 'reverse_blocks<double>', 'shuffles<float>',
         'shuffles<long long>', 'copy_shifted<float>', 'write_const', 'broken_sync']


@pytest.fixture(scope='module')
def module():
    return sim.RawModule(code=KERNELS, options=('-std=c++14',), name_expressions=NAMES)


# ---------------------------------------------------------------------------------------------
# Barriers, shared memory, shuffles
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_block_reduction_with_barriers_is_exact(module, dtype):
    x = np.arange(3 * 256, dtype=dtype)
    out = sim.empty(3, dtype)
    name = f'block_sum<{"float" if dtype == np.float32 else "double"}>'
    module.get_function(name)((3,), (256,), (sim.asarray(x), out, np.int32(1)))
    np.testing.assert_array_equal(out.get(), x.reshape(3, 256).sum(axis=1))


def test_a_missing_barrier_reads_unwritten_shared_memory(module):
    # Thread 0 runs ahead to its reads while the others have not yet written: garbage (NaN).
    out = sim.empty(1, np.float32)
    module.get_function('block_sum<float>')((1,), (256,), (sim.ones(256, np.float32), out,
                                                           np.int32(0)))
    assert np.isnan(out.get()).all()


def test_dynamic_shared_memory(module):
    x = np.arange(2 * 64, dtype=np.float64)
    y = sim.empty(x.shape, np.float64)
    module.get_function('reverse_blocks<double>')((2,), (64,), (sim.asarray(x), y),
                                                  shared_mem=64 * 8)
    np.testing.assert_array_equal(y.get(), x.reshape(2, 64)[:, ::-1].ravel())


def shuffle_model(values, width):
    """What each lane receives from __shfl_{,up_,down_,xor_}sync, by PTX's rule: a source lane
    outside the caller's segment of `width` lanes (or past its end) gives the caller's value."""
    lanes = np.arange(values.size) % 32
    first = lanes // width * width
    last = first + width - 1
    warp = np.arange(values.size) - lanes
    results = []
    for source, inside in [(first + ((lanes * 7 + 3) % 32) % width, True),
                           (lanes - 3, lanes - 3 >= first), (lanes + 5, lanes + 5 <= last),
                           (lanes ^ 6, (lanes ^ 6) <= last)]:
        results.append(np.where(inside, values[warp + np.where(inside, source, lanes)], values))
    return np.concatenate(results)


@pytest.mark.parametrize('width', [32, 16, 8, 4])
@pytest.mark.parametrize('dtype', [np.float32, np.int64])
def test_shuffles_follow_ptx(module, width, dtype):
    values = (np.random.default_rng(width).standard_normal(128) * 1000).astype(dtype)
    out = sim.empty(4 * 128, dtype)
    name = f'shuffles<{"float" if dtype == np.float32 else "long long"}>'
    module.get_function(name)((2,), (64,), (sim.asarray(values), out, np.int32(width)))
    np.testing.assert_array_equal(out.get(), shuffle_model(values, width))


@pytest.mark.parametrize('how, message', [(0, 'have exited'), (1, 'cannot go on'),
                                          (2, 'leaves lane 16 out')])
def test_broken_synchronisation_is_an_error(module, how, message):
    with pytest.raises(cuda_simulator.SimulatorError, match=message):
        module.get_function('broken_sync')((1,), (32,), (sim.zeros(32, np.float32),
                                                         np.int32(how)))


# ---------------------------------------------------------------------------------------------
# What a GPU hides: out-of-bounds access, const writes, uninitialised memory, bad arguments
# ---------------------------------------------------------------------------------------------

def copy_shifted(module, n, read_shift, write_shift, x_size=10, y_size=10):
    x = sim.asarray(np.arange(x_size, dtype=np.float32))
    y = sim.empty(y_size, np.float32)
    module.get_function('copy_shifted<float>')((1,), (32,), (x, y, n, read_shift, write_shift))
    return y.get()


def test_in_bounds_copy_passes(module):
    np.testing.assert_array_equal(copy_shifted(module, 10, 0, 0), np.arange(10))


@pytest.mark.parametrize('read_shift, write_shift, message', [
    (1, 0, 'argument 0: element 10 of 10 .past its end.'),
    (0, 1, 'argument 1: element 10 of 10 .past its end.'),
    (0, -1, 'out-of-bounds write to argument 1: element -1 '),
])
def test_out_of_bounds_access_is_an_error(module, read_shift, write_shift, message):
    with pytest.raises(cuda_simulator.SimulatorError, match=message):
        copy_shifted(module, 10, read_shift, write_shift)


def test_a_read_before_an_argument_sees_nan(module):
    assert np.isnan(copy_shifted(module, 10, -1, 0)[0])


def test_an_unwritten_output_element_stays_garbage(module):
    y = copy_shifted(module, 9, 0, 0)
    assert np.isnan(y[9]) and not np.isnan(y[:9]).any()
    assert (sim.empty(3, np.int64).get() == np.int64(-0x5A5A5A5A5A5A5A5B)).all()


def test_a_write_through_a_const_pointer_is_an_error(module):
    with pytest.raises(cuda_simulator.SimulatorError, match='argument 0, a const pointer'):
        module.get_function('write_const')((1,), (4,), (sim.zeros(4, np.float32),))


def test_a_failed_launch_leaves_the_simulator_usable(module):
    with pytest.raises(cuda_simulator.SimulatorError):
        copy_shifted(module, 10, 1, 0)
    np.testing.assert_array_equal(copy_shifted(module, 10, 0, 0), np.arange(10))


@pytest.mark.parametrize('args, error, message', [
    ((sim.zeros(10, np.float32), sim.zeros(10, np.float32), 10, 0), TypeError, 'takes 5'),
    ((sim.zeros(10, np.float64), sim.zeros(10, np.float32), 10, 0, 0), TypeError, 'float64'),
    ((np.zeros(10, np.float32), sim.zeros(10, np.float32), 10, 0, 0), TypeError, 'device array'),
    ((sim.zeros(10, np.float32), sim.zeros(10, np.float32), np.int32(10), 0, 0), TypeError,
     'argument 2 .int64. got 10 of int32'),
    ((sim.zeros(20, np.float32)[::2], sim.zeros(10, np.float32), 10, 0, 0), ValueError,
     'non-contiguous'),
])
def test_arguments_are_checked_against_the_signature(module, args, error, message):
    with pytest.raises(error, match=message):
        module.get_function('copy_shifted<float>')((1,), (32,), args)


def test_overlapping_arguments_are_refused(module):
    buffer = sim.zeros(12, np.float32)
    with pytest.raises(ValueError, match='overlaps argument 0'):
        module.get_function('copy_shifted<float>')((1,), (32,), (buffer[:10], buffer[2:], 10, 0,
                                                                 0))


def test_unknown_name_and_option_are_refused(module):
    with pytest.raises(KeyError, match='block_sum<int>'):
        module.get_function('block_sum<int>')
    with pytest.raises(ValueError, match='--use_fast_math'):
        sim.RawModule(code=KERNELS, options=('--use_fast_math',), name_expressions=NAMES)


def test_modules_are_cached_by_source(tmp_path, monkeypatch):
    monkeypatch.setenv('MINIDL_CACHE', str(tmp_path))
    code = '__global__ void nothing() {}'
    first = cuda_simulator.build(code, ['nothing'])
    assert first.is_relative_to(tmp_path / 'cuda-sim')
    stamp = first.stat().st_mtime_ns
    assert cuda_simulator.build(code, ['nothing']) == first and first.stat().st_mtime_ns == stamp
    assert cuda_simulator.build(code + '\n', ['nothing']) != first


def test_compile_errors_show_the_compiler_output():
    with pytest.raises(RuntimeError, match='failed on the kernel source'):
        sim.RawModule(code='__global__ void broken( {}', name_expressions=['broken'])


# ---------------------------------------------------------------------------------------------
# The CuPy surface
# ---------------------------------------------------------------------------------------------

def test_device_arrays_do_not_mix_with_host_arrays():
    x = sim.arange(3.0)
    assert isinstance(sim.exp(x), sim.ndarray) and isinstance(x * np.float32(2) + 1, sim.ndarray)
    with pytest.raises(TypeError, match='does not mix host and device memory'):
        x + np.ones(3)
    assert type(x.get()) is np.ndarray and type(sim.asnumpy(x)) is np.ndarray


def test_reductions_and_indexing_give_0d_device_arrays_as_in_cupy():
    x = sim.arange(3.0)
    for value in (x.sum(), x[1], sim.max(x), x.argmax()):
        assert isinstance(value, sim.ndarray) and value.ndim == 0
    assert float(x.sum()) == 3.0


def test_argsort_is_stable_as_in_cupy():
    ties = sim.asarray(np.array([1, 0, 1, 0, 1, 0] * 8))
    np.testing.assert_array_equal(sim.argsort(ties).get(), np.argsort(ties.get(), kind='stable'))
    np.testing.assert_array_equal(ties.argsort().get(), np.argsort(ties.get(), kind='stable'))


def test_simulator_is_chosen_only_when_asked(monkeypatch):
    if backends.gpu_available():
        pytest.skip('a real GPU always wins over the simulator')
    monkeypatch.delenv(backends.SIMULATOR_ENV_VAR, raising=False)
    backends._import_cupy.cache_clear()
    with pytest.raises(RuntimeError, match='pip install minidl'):
        backends.cupy_module()
    with cuda_simulator.simulating():
        assert backends.cupy_module() is sim and backends.gpu_available()
        assert backends.is_gpu_array(backends.to_device(np.zeros(2), 'gpu'))
    assert not backends.gpu_available()


# ---------------------------------------------------------------------------------------------
# minidl's GPU path on the simulator
# ---------------------------------------------------------------------------------------------

def test_64_bit_indices_run_the_long_long_instances(monkeypatch):
    with cuda_simulator.simulating():
        x = backends.to_device(np.ones((2, 3), np.float32), 'gpu')
        before = cuda_simulator.launches.copy()
        cuda.bias_act_forward(x, None, 'relu')
        monkeypatch.setattr(cuda, '_INT32_LIMIT', 0)
        cuda.bias_act_forward(x, None, 'relu')
    ran = cuda_simulator.launches - before
    assert ran == {'bias_act_forward_kernel<float, int>': 1,
                   'bias_act_forward_kernel<float, long long>': 1}


def training_step(device, x, y):
    """Loss and weights after one RMSprop step of the lessons' MNIST convnet on ``device``."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'examples'))
    from mnist_convnet import build_model
    minidl.random.seed(0)
    model = build_model()
    model.compile(optimizer=optimizers.RMSprop(), loss='categorical_crossentropy')
    model.to(device)
    loss = model.train_on_batch(x, y)
    return loss, [w.numpy() for w in model.weights]


def test_mnist_training_step_on_the_gpu_path_equals_the_cpu_step():
    rng = np.random.default_rng(0)
    x = rng.random((4, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 4)]
    cpu_loss, cpu_weights = training_step('cpu', x, y)
    with cuda_simulator.simulating():
        before = cuda_simulator.launches.copy()
        gpu_loss, gpu_weights = training_step('gpu', x, y)
        ran = cuda_simulator.launches - before
    if not backends.gpu_available():  # a real GPU's launches are not counted
        assert {name.split('<')[0] for name in ran} == {
            'im2col_kernel', 'col2im_kernel', 'maxpool2d_forward_kernel',
            'maxpool2d_backward_kernel', 'bias_act_forward_kernel', 'bias_act_backward_kernel',
            'softmax_xent_forward_kernel', 'softmax_xent_backward_kernel', 'rmsprop_kernel'}
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-5)
    for gpu, cpu in zip(gpu_weights, cpu_weights):
        assert gpu.dtype == cpu.dtype == np.float32
        np.testing.assert_allclose(gpu, cpu, rtol=1e-5, atol=1e-6)
