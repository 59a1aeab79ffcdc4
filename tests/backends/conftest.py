"""Fixtures of the CUDA tests: a device to run on (the GPU, else the CUDA simulator) and the
index type the kernels are launched with."""
import pytest

from minidl.backends import cuda, cuda_simulator, gpu_available


@pytest.fixture(scope='module')
def cuda_device():
    """'gpu' where a CUDA device answers; else 'simulator', with minidl's GPU path on the CUDA
    simulator for the module's tests (skipped where there is no C++ compiler)."""
    if gpu_available():
        yield 'gpu'
        return
    if cuda_simulator.compiler() is None:
        pytest.skip('neither a CUDA device nor a C++ compiler for the CUDA simulator (g++)')
    with cuda_simulator.simulating():
        yield 'simulator'


@pytest.fixture(scope='module', params=['int', 'long long'])
def index_type(request):
    """The C++ index type of every launch: 32-bit as minidl picks it for small arrays, or 64-bit,
    forced by lowering the size limit of the 32-bit path to nothing."""
    with pytest.MonkeyPatch.context() as patch:
        if request.param == 'long long':
            patch.setattr(cuda, '_INT32_LIMIT', 0)
        yield request.param
