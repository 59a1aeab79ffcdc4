"""The NCCL all-reduce of GPU buffers (minidl.distributed.nccl) on 2 ranks: on 2 GPUs where
there are, else on the CUDA simulator, whose ``cupy.cuda.nccl`` carries the bytes over MPI.

Each test is one ``mpiexec -n 2`` run: the sums of float32 and float64 buffers and the errors
for buffers NCCL cannot sum; a distributed fit of a small convnet on the GPU path that ends
with the weights of the same fit on the CPU; and the two ways an all-reduce ends the job, a
rank that never joins it (the timeout) and ranks that reduce unlike buffers (the simulator's
NCCL reports what a GPU's would not).
"""
import numpy as np
import pytest

from minidl.backends import cuda_simulator, cupy_module, gpu_available


@pytest.fixture(scope='module')
def gpu_env():
    """The environment that gives each of 2 ranks a GPU: none needed with 2 real GPUs, the
    simulator's variable without a GPU; skipped with 1 GPU (NCCL wants a GPU per rank) or
    without a GPU and a C++ compiler."""
    if gpu_available():
        if cupy_module().cuda.runtime.getDeviceCount() < 2:
            pytest.skip('one GPU: NCCL needs a GPU per rank, and the simulator yields to a GPU')
        return {}
    if cuda_simulator.compiler() is None:
        pytest.skip('neither CUDA devices nor a C++ compiler for the CUDA simulator (g++)')
    return {'MINIDL_CUDA_SIMULATOR': '1'}


def test_the_nccl_allreduce_sums_gpu_buffers_in_place(run_ranks, gpu_env):
    run_ranks('''
        import numpy as np
        from minidl import distributed
        from minidl.backends import cupy_module
        from minidl.distributed.nccl import NcclRing

        comm, cupy = distributed.init(timeout=60), cupy_module()
        for dtype in (np.float32, np.float64):
            values = (np.arange(6, dtype=dtype) + 0.25) * (comm.rank + 1)
            buffer = cupy.asarray(values.reshape(2, 3))
            assert comm.allreduce(buffer, 'a test buffer') is buffer
            assert buffer.dtype == dtype and buffer.shape == (2, 3)
            np.testing.assert_array_equal(cupy.asnumpy(buffer),
                                          3 * (np.arange(6, dtype=dtype) + 0.25).reshape(2, 3))
        assert isinstance(comm._nccl, NcclRing)
        assert comm.stats['allreduce'][0] == 2

        for bad, error, words in ((cupy.zeros(3, bool), TypeError, 'dtype bool'),
                                  (cupy.zeros((3, 4), np.float32)[:, 1], ValueError,
                                   'strides')):
            try:
                comm.allreduce(bad, 'an unsummable buffer')
            except error as raised:
                assert 'an unsummable buffer' in str(raised) and words in str(raised), raised
            else:
                raise AssertionError(f'{bad.dtype} {bad.strides} was all-reduced')
        print('ok')
    ''', env=gpu_env)


def test_the_simulated_nccl_checks_what_nccl_would_not(run_ranks, gpu_env):
    if not gpu_env:
        pytest.skip("checks of the CUDA simulator's NCCL")
    run_ranks('''
        import numpy as np
        from mpi4py import MPI
        from minidl.backends import cupy_module

        nccl, cupy, rank = cupy_module().cuda.nccl, cupy_module(), MPI.COMM_WORLD.Get_rank()

        def refused(make, *words):
            try:
                make()
            except (nccl.NcclError, TypeError) as error:
                assert all(word in str(error) for word in words), error
            else:
                raise AssertionError(f'accepted; expected an error with {words}')

        uid = nccl.get_unique_id()
        assert len(uid) == 128 and all(-128 <= b < 128 for b in uid)
        shared = np.array(uid, np.int64)
        MPI.COMM_WORLD.Bcast(shared)  # rank 0's id, as minidl broadcasts it
        uid = tuple(shared.tolist())
        refused(lambda: nccl.NcclCommunicator(2, nccl.get_unique_id(), rank), 'unique id')
        refused(lambda: nccl.NcclCommunicator(3, uid, rank), 'ndev')
        refused(lambda: nccl.NcclCommunicator(2, uid, 0), 'ranks [0, 0]')
        refused(lambda: nccl.NcclCommunicator(2, list(uid), rank), 'tuple')

        comm = nccl.NcclCommunicator(2, uid, rank)
        assert (comm.rank_id(), comm.size()) == (rank, 2)
        x = cupy.ones(4, np.float32)
        pointer, stream = x.__cuda_array_interface__['data'][0], 0
        refused(lambda: comm.allReduce(pointer, pointer, 4, 9, nccl.NCCL_SUM, stream), 'bfloat16')
        refused(lambda: comm.allReduce(pointer, pointer, 4, 7, nccl.NCCL_AVG, stream), 'NCCL_AVG')
        refused(lambda: comm.allReduce(pointer, pointer, -1, 7, nccl.NCCL_SUM, stream), 'count')
        refused(lambda: comm.allReduce(pointer, pointer + 4, 2, 7, nccl.NCCL_SUM, stream),
                'overlap')

        y = cupy.zeros(4, np.float32)
        comm.allReduce(pointer, y.__cuda_array_interface__['data'][0], 4, nccl.NCCL_FLOAT32,
                       nccl.NCCL_MAX, stream)
        done = cupy.cuda.Event()
        done.record(cupy.cuda.get_current_stream())
        done.synchronize()
        np.testing.assert_array_equal(cupy.asnumpy(y), np.ones(4, np.float32))
        comm.abort()
        refused(lambda: comm.allReduce(pointer, pointer, 4, 7, nccl.NCCL_SUM, stream), 'aborted')
        print('ok')
    ''', env=gpu_env)


FIT = '''
    import numpy as np
    from minidl import distributed, layers, models, optimizers, random
    from minidl.distributed.nccl import NcclRing

    comm = distributed.init(timeout=120)
    rng = np.random.default_rng(0)
    x = rng.random((64, 8, 8, 1), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 64)]


    def fit(device, batch_size, distributed):
        random.seed(0)
        model = models.Sequential([
            layers.Conv2D(4, (3, 3), activation='relu', input_shape=(8, 8, 1)),
            layers.MaxPooling2D((2, 2)), layers.Flatten(), layers.Dense(3, activation='softmax')])
        model.compile(optimizer=optimizers.SGD(0.1, momentum=0.9),
                      loss='categorical_crossentropy', metrics=['accuracy'])
        history = model.fit(x, y, batch_size=batch_size, epochs=2, shuffle=False, verbose=0,
                            device=device, distributed=distributed)
        return history.history['loss'], [w.numpy() for w in model.weights]


    gpu = fit('gpu', 16, True)
    assert isinstance(comm._nccl, NcclRing)  # the gradients went through NCCL
    cpu = fit('cpu', 16, True)
    if comm.rank == 0:
        alone = fit('cpu', 32, False)
        np.savez('fits.npz', **{f'{name}_{i}': array for name, (loss, weights) in
                                (('gpu', gpu), ('cpu', cpu), ('alone', alone))
                                for i, array in enumerate([np.array(loss)] + weights)})
'''


def test_a_distributed_fit_on_the_gpu_path_equals_the_cpu_fit(run_ranks, gpu_env, tmp_path):
    run_ranks(FIT, env=gpu_env, timeout=300)
    fits = np.load(tmp_path / 'fits.npz')
    names = sorted(name for name in fits.files if name.startswith('gpu_'))
    assert len(names) == 1 + 4  # the losses and the conv's and dense's kernels and biases
    assert all(fits[name].dtype == np.float32 for name in names[1:])
    for name in names:
        gpu, cpu, alone = fits[name], fits['cpu' + name[3:]], fits['alone' + name[3:]]
        np.testing.assert_allclose(gpu, cpu, rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(cpu, alone, rtol=1e-5, atol=1e-6, err_msg=name)
    assert not np.allclose(fits['gpu_1'], fits['gpu_1'].mean())  # it trained on something


def ending(run_ranks, gpu_env, skipping_rank_code):
    """The output of a 2-rank job with timeout 2 s that all-reduces one GPU buffer, then runs
    ``skipping_rank_code`` on rank 1 while rank 0 all-reduces ``the second buffer``."""
    result = run_ranks(f'''
        import time
        import numpy as np
        from minidl import distributed
        from minidl.backends import cupy_module

        comm, cupy = distributed.init(timeout=2), cupy_module()
        comm.allreduce(cupy.ones(8, np.float32), 'the first buffer')
        if comm.rank == 1:
            {skipping_rank_code}
        else:
            comm.allreduce(cupy.ones(8, np.float32), 'the second buffer')
        time.sleep(60)
    ''', env=gpu_env, timeout=60, check=False)
    assert result.returncode != 0
    return result.stdout + result.stderr


def test_a_rank_that_never_joins_the_allreduce_ends_the_job(run_ranks, gpu_env):
    output = ending(run_ranks, gpu_env, 'time.sleep(60)')
    assert 'rank 0 of 2: waited 2 s in the NCCL all-reduce of the second buffer' in output


def test_unlike_allreduces_end_the_job_with_the_simulators_error(run_ranks, gpu_env):
    if not gpu_env:
        pytest.skip('NCCL itself hangs on unlike all-reduces; the simulator says so')
    output = ending(run_ranks, gpu_env, "comm.allreduce(cupy.ones(4, np.float32), 'a short one')")
    assert 'NCCL failed in the all-reduce of' in output
    assert 'NCCL_ERROR_INVALID_USAGE: this all-reduce has [count, datatype, op]' in output
