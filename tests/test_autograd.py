"""Tensor, Function and backward: traversal, accumulation, graph freeing, devices, errors."""
import weakref

import numpy as np
import pytest

import minidl
import minidl.functions as F
from minidl import Function, Tensor, gradcheck, no_grad
from minidl.backends import gpu_available


def test_tensor_basics():
    x = minidl.tensor([[1.0, 2.0, 3.0]], requires_grad=True, name='x')
    assert x.dtype == np.float32 and x.shape == (1, 3) and x.ndim == 2 and x.device == 'cpu'
    assert repr(x) == "Tensor(shape=(1, 3), dtype=float32, device='cpu', requires_grad=True, " \
                      "name='x')"
    assert x.sum().item() == 6.0
    assert isinstance(x.numpy(), np.ndarray)
    assert not x.detach().requires_grad and x.detach().data is x.data
    assert x.to('cpu') is x
    assert x.T.shape == (3, 1) and x.reshape(3).shape == (3,) and x.reshape(3, 1).shape == (3, 1)


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match='int64'):
        Tensor(np.arange(3), requires_grad=True)


def test_gradients_accumulate_over_every_use():
    w = minidl.tensor([2.0], requires_grad=True)
    (w * 3 + w * w + w).sum().backward()
    assert w.grad.tolist() == [3 + 2 * 2 + 1]


def test_diamond_graph_orders_consumers_before_producers():
    x = minidl.tensor([1.5], dtype=np.float64, requires_grad=True)
    b = x.exp()
    c = b * x
    (b + c).sum().backward()
    assert x.grad[0] == pytest.approx(np.exp(1.5) * (2 + 1.5))


def test_a_graph_ten_thousand_ops_deep_needs_no_recursion():
    x = minidl.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y + 1
    y.sum().backward()
    assert x.grad.tolist() == [1.0]


def test_graph_is_freed_unless_retained():
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0]
    with pytest.raises(RuntimeError, match='freed'):
        y.backward()


def test_backward_of_a_non_scalar_needs_a_gradient():
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r'shape \(2,\)'):
        (x * 2).backward()
    (x * 2).backward(np.ones(2, dtype=np.float32))
    assert x.grad.tolist() == [2.0, 2.0]


def test_no_grad_records_nothing():
    x = minidl.tensor([1.0], requires_grad=True)
    with no_grad():
        y = x * 2
    assert not y.requires_grad and y.creator is None
    assert minidl.is_grad_enabled()


def test_retain_grad_keeps_an_intermediate_gradient():
    x = minidl.tensor([1.0, -2.0], requires_grad=True)
    h = (x * 3).retain_grad()
    (h * h).sum().backward()
    assert h.grad.tolist() == [6.0, -12.0]


def test_only_required_gradients_are_computed():
    calls = []

    class Spy(Function):
        def forward(self, a, b):
            return a * b

        def backward(self, gy):
            calls.append(self.needs_input_grad)
            return gy, None

    a = minidl.tensor([1.0], requires_grad=True)
    Spy()(a, np.array([2.0], dtype=np.float32)).sum().backward()
    assert calls == [(True, False)]


class WrongSquare(Function):
    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, gy):
        return gy * self.x  # should be 2 * x


def test_gradcheck_finds_a_wrong_gradient_and_reports_where():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    with pytest.raises(minidl.GradcheckError, match='index'):
        gradcheck(lambda t: WrongSquare()(t), [x])
    with pytest.raises(minidl.GradcheckError, match='directional'):
        gradcheck(lambda t: WrongSquare()(t), [x], mode='directional')
    assert gradcheck(lambda t: t * t, [x], mode='directional')


def test_gradcheck_refuses_float32():
    with pytest.raises(TypeError, match='float64'):
        gradcheck(lambda t: t * t, [minidl.tensor([1.0], requires_grad=True)])


@pytest.mark.skipif(gpu_available(), reason='checks the message shown when there is no GPU')
def test_asking_for_the_gpu_without_one_says_how_to_install():
    with pytest.raises(RuntimeError, match=r'pip install minidl\[gpu\]'):
        minidl.tensor([1.0]).to('gpu')


def test_unknown_device_is_rejected():
    with pytest.raises(ValueError, match='device'):
        minidl.tensor([1.0]).to('tpu')


@pytest.mark.gpu
def test_mixing_cpu_and_gpu_tensors_is_a_clear_error():
    a = minidl.tensor([1.0]).to('gpu')
    with pytest.raises(ValueError, match='different devices'):
        a + minidl.tensor([1.0])


@pytest.mark.gpu
def test_gpu_round_trip_and_gradient(check_grad):
    x = minidl.tensor([[1.0, -2.0]], requires_grad=True).to('gpu')
    (F.relu(x) * 3).sum().backward()
    assert x.device == 'gpu' and x.grad.get().tolist() == [[3.0, 0.0]]
    assert isinstance(x.numpy(), np.ndarray)


def test_mixing_devices_is_detected_without_a_gpu(monkeypatch):
    """Stand a marked NumPy array in for a CuPy one to exercise the device check."""
    class OnGpu(np.ndarray):
        pass

    monkeypatch.setattr(minidl.backends, 'is_gpu_array', lambda a: isinstance(a, OnGpu))
    monkeypatch.setattr(minidl.backends, 'cupy_module', lambda: np)
    gpu_tensor = Tensor(np.ones(2, np.float32).view(OnGpu))
    with pytest.raises(ValueError, match='different devices'):
        gpu_tensor + minidl.tensor([1.0, 2.0])


def test_the_graph_does_not_keep_intermediate_tensors_alive():
    x = minidl.tensor([1.0, -2.0, 3.0], requires_grad=True)
    h = x * 2
    alive = weakref.ref(h)
    y = F.relu(h).sum()  # relu's backward needs its output only
    del h
    assert alive() is None
    y.backward()
    assert x.grad.tolist() == [2.0, 0.0, 2.0]
