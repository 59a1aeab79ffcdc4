"""Optimizers: each update rule against its formula written out in NumPy, step by step."""
import numpy as np
import pytest

from minidl import optimizers
from minidl.autograd import Tensor

STEPS = 4


def make_param(seed=0, shape=(3, 4)):
    rng = np.random.default_rng(seed)
    return Tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)


def gradients(seed=1, shape=(3, 4)):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(STEPS)]


def run(optimizer, param, grads):
    """Apply ``optimizer`` for one step per gradient; return the weight after each step."""
    history = []
    for g in grads:
        param.grad = g
        optimizer.step([param])
        history.append(param.data.copy())
    return history


def expected_sgd(w, grads, lr, momentum=0.0, nesterov=False, decay=0.0):
    w, v, out = w.astype(np.float64), np.zeros(w.shape), []
    for t, g in enumerate(grads):
        lr_t = lr / (1 + decay * t)
        v = momentum * v - lr_t * g
        w = w + (momentum * v - lr_t * g if nesterov else v)
        out.append(w)
    return out


def expected_rmsprop(w, grads, lr, rho, eps):
    w, a, out = w.astype(np.float64), np.zeros(w.shape), []
    for g in grads:
        a = rho * a + (1 - rho) * g * g
        w = w - lr * g / np.sqrt(a + eps)
        out.append(w)
    return out


def expected_adam(w, grads, lr, b1, b2, eps):
    w, m, v, out = w.astype(np.float64), np.zeros(w.shape), np.zeros(w.shape), []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
        out.append(w)
    return out


def assert_trajectory(got, expected):
    for step, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f'step {step + 1}')


@pytest.mark.parametrize('momentum, nesterov', [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_matches_formula(momentum, nesterov):
    param, grads = make_param(), gradients()
    w0 = param.data.copy()
    got = run(optimizers.SGD(0.1, momentum=momentum, nesterov=nesterov), param, grads)
    assert_trajectory(got, expected_sgd(w0, grads, 0.1, momentum, nesterov))


def test_sgd_decay_shrinks_the_rate_each_iteration():
    param, grads = make_param(), gradients()
    w0 = param.data.copy()
    opt = optimizers.SGD(lr=0.1, momentum=0.9, decay=0.5)
    got = run(opt, param, grads)
    assert_trajectory(got, expected_sgd(w0, grads, 0.1, 0.9, decay=0.5))
    assert opt.iterations == STEPS
    assert opt.current_learning_rate() == pytest.approx(0.1 / (1 + 0.5 * STEPS))


def test_rmsprop_matches_formula():
    param, grads = make_param(), gradients()
    w0 = param.data.copy()
    got = run(optimizers.RMSprop(learning_rate=0.01, rho=0.8), param, grads)
    assert_trajectory(got, expected_rmsprop(w0, grads, 0.01, 0.8, 1e-7))


def test_adam_matches_formula():
    param, grads = make_param(), gradients()
    w0 = param.data.copy()
    got = run(optimizers.Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.99), param, grads)
    assert_trajectory(got, expected_adam(w0, grads, 0.01, 0.8, 0.99, 1e-7))


def test_defaults_follow_keras():
    rmsprop = optimizers.RMSprop()
    assert (rmsprop.learning_rate, rmsprop.rho, rmsprop.epsilon) == (0.001, 0.9, 1e-7)
    sgd = optimizers.SGD()
    assert (sgd.learning_rate, sgd.momentum, sgd.nesterov, sgd.decay) == (0.01, 0.0, False, 0.0)
    adam = optimizers.Adam()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-7)


@pytest.mark.parametrize('cls', [optimizers.SGD, optimizers.RMSprop, optimizers.Adam])
def test_lr_is_an_alias_of_learning_rate(cls):
    opt = cls(lr=1e-4)
    assert opt.learning_rate == opt.lr == 1e-4
    opt.lr = 2e-5
    assert opt.learning_rate == 2e-5


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match='momentom'):
        optimizers.SGD(momentom=0.9)


@pytest.mark.parametrize('kwargs', [{'learning_rate': -1}, {'momentum': 1.5}, {'decay': -0.1}])
def test_out_of_range_hyperparameters_are_rejected(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        optimizers.SGD(**kwargs)


def test_only_params_with_gradients_change():
    trained, frozen = make_param(0), make_param(1)
    before = frozen.data.copy()
    trained.grad = np.ones_like(trained.data)
    opt = optimizers.RMSprop()
    opt.step([trained, frozen])
    np.testing.assert_array_equal(frozen.data, before)
    assert not np.array_equal(trained.data, make_param(0).data)
    assert len(opt._slots) == 1


def test_slots_are_per_parameter_and_keep_dtype():
    a, b = make_param(0, (2, 3)), make_param(1, (5,))
    a.grad, b.grad = np.ones((2, 3), np.float32), np.ones(5, np.float32)
    opt = optimizers.Adam()
    opt.step([a, b])
    slots_a, slots_b = opt.slots(a), opt.slots(b)
    assert slots_a['m'] is not slots_b['m']
    assert slots_a['m'].shape == (2, 3) and slots_b['v'].shape == (5,)
    assert slots_a['m'].dtype == np.float32


def test_gradient_shape_mismatch_names_the_weight():
    param = make_param()
    param.name = 'dense/kernel'
    param.grad = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match='dense/kernel'):
        optimizers.SGD().step([param])


def test_float64_weights_stay_float64():
    param = Tensor(np.ones(3), requires_grad=True)
    param.grad = np.full(3, 0.5)
    optimizers.Adam().step([param])
    assert param.data.dtype == np.float64


@pytest.mark.parametrize('name, cls', [('sgd', optimizers.SGD), ('RMSprop', optimizers.RMSprop),
                                       ('ADAM', optimizers.Adam)])
def test_get_by_name(name, cls):
    assert type(optimizers.get(name)) is cls


def test_get_passes_instances_through_and_rejects_unknown_names():
    opt = optimizers.SGD(0.5)
    assert optimizers.get(opt) is opt
    with pytest.raises(ValueError, match='sgd, rmsprop, adam'):
        optimizers.get('adagrad')
    with pytest.raises(TypeError):
        optimizers.get(3)


def test_config_round_trip():
    opt = optimizers.SGD(lr=0.05, momentum=0.9, nesterov=True, decay=1e-3)
    config = opt.get_config()
    assert config == {'learning_rate': 0.05, 'momentum': 0.9, 'nesterov': True, 'decay': 1e-3,
                      'name': 'SGD'}
    clone = optimizers.get({'class_name': 'SGD', 'config': config})
    assert clone.get_config() == config
    assert repr(clone).startswith('SGD(learning_rate=0.05')


def test_update_runs_on_the_weights_device(xp):
    param = Tensor(xp.ones((2, 2), dtype=xp.float32), requires_grad=True)
    param.grad = xp.full((2, 2), 0.5, dtype=xp.float32)
    opt = optimizers.Adam(learning_rate=0.1)
    opt.step([param])
    assert type(opt.slots(param)['m']) is type(param.data)
    np.testing.assert_allclose(np.asarray(param.data.tolist()), 0.9, rtol=1e-6)
