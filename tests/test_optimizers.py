"""Optimizers: each update rule, option, clipping, weight decay and schedule against its formula
written out in NumPy (float64), step by step."""
import math

import numpy as np
import pytest

from minidl import backend as K, callbacks, optimizers
from minidl.optimizers import schedules
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


# --- the update rules, as Keras 3 writes them: w, g, the weight's state, step t, rate -> new w
def sgd(w, g, s, t, lr, momentum=0.0, nesterov=False):
    if not momentum:
        return w - lr * g
    s['v'] = momentum * s.get('v', 0) - lr * g
    return w + (momentum * s['v'] - lr * g if nesterov else s['v'])


def rmsprop(w, g, s, t, lr, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
    s['a'] = rho * s.get('a', 0) + (1 - rho) * g * g
    s['mg'] = rho * s.get('mg', 0) + (1 - rho) * g
    step = lr * g / np.sqrt(s['a'] - (s['mg'] ** 2 if centered else 0) + epsilon)
    if momentum:
        s['vel'] = momentum * s.get('vel', 0) + step
        step = s['vel']
    return w - step


def adam(w, g, s, t, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False):
    s['m'] = beta_1 * s.get('m', 0) + (1 - beta_1) * g
    s['v'] = beta_2 * s.get('v', 0) + (1 - beta_2) * g * g
    s['v_max'] = np.maximum(s.get('v_max', 0), s['v'])
    v = s['v_max'] if amsgrad else s['v']
    return w - lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t) * s['m'] / (np.sqrt(v) + epsilon)


def adagrad(w, g, s, t, lr, initial_accumulator_value=0.1, epsilon=1e-7):
    s['acc'] = s.get('acc', initial_accumulator_value) + g * g
    return w - lr * g / np.sqrt(s['acc'] + epsilon)


def adadelta(w, g, s, t, lr, rho=0.95, epsilon=1e-7):
    s['a'] = rho * s.get('a', 0) + (1 - rho) * g * g
    delta = -np.sqrt(s.get('d', 0) + epsilon) / np.sqrt(s['a'] + epsilon) * g
    s['d'] = rho * s.get('d', 0) + (1 - rho) * delta * delta
    return w + lr * delta


def adamax(w, g, s, t, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    s['m'] = beta_1 * s.get('m', 0) + (1 - beta_1) * g
    s['u'] = np.maximum(beta_2 * s.get('u', 0), np.abs(g))
    return w - lr * s['m'] / ((1 - beta_1 ** t) * (s['u'] + epsilon))


def nadam(w, g, s, t, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    u_t, u_next = (beta_1 * (1 - 0.5 * 0.96 ** k) for k in (t, t + 1))
    s['u_product'] = s.get('u_product', 1.0) * u_t
    s['m'] = beta_1 * s.get('m', 0) + (1 - beta_1) * g
    s['v'] = beta_2 * s.get('v', 0) + (1 - beta_2) * g * g
    m_hat = (u_next * s['m'] / (1 - s['u_product'] * u_next) +
             (1 - u_t) * g / (1 - s['u_product']))
    return w - lr * m_hat / (np.sqrt(s['v'] / (1 - beta_2 ** t)) + epsilon)


def expected(rule, weights, steps, rate, clipnorm=None, clipvalue=None, global_clipnorm=None,
             weight_decay=None, **hyper):
    """The weights after each step: clip, decay ``w -= w * weight_decay * lr``, update."""
    weights, states, out = [w.astype(np.float64) for w in weights], [{} for _ in weights], []
    for t, grads in enumerate(steps, start=1):
        lr = rate(t - 1)
        grads = [g.astype(np.float64) for g in grads]
        if clipnorm:
            grads = [g * min(1, clipnorm / np.linalg.norm(g)) for g in grads]
        if global_clipnorm:
            norm = math.sqrt(sum(np.sum(g * g) for g in grads))
            grads = [g * min(1, global_clipnorm / norm) for g in grads]
        if clipvalue:
            grads = [np.clip(g, -clipvalue, clipvalue) for g in grads]
        if weight_decay:
            weights = [w - w * weight_decay * lr for w in weights]
        weights = [rule(w, g, s, t, lr, **hyper) for w, g, s in zip(weights, grads, states)]
        out.append(weights)
    return out


def run_many(optimizer, params, steps):
    """Apply ``optimizer`` once per list of gradients; the weights after each step."""
    history = []
    for grads in steps:
        for param, g in zip(params, grads):
            param.grad = g
        optimizer.step(params)
        history.append([param.data.copy() for param in params])
    return history


CASES = [  # (optimizer class, its arguments, the rule, the rule's arguments)
    (optimizers.SGD, {}, sgd, {}),
    (optimizers.SGD, {'momentum': 0.9}, sgd, {'momentum': 0.9}),
    (optimizers.SGD, {'momentum': 0.9, 'nesterov': True}, sgd,
     {'momentum': 0.9, 'nesterov': True}),
    (optimizers.RMSprop, {'rho': 0.8}, rmsprop, {'rho': 0.8}),
    (optimizers.RMSprop, {'momentum': 0.7}, rmsprop, {'momentum': 0.7}),
    (optimizers.RMSprop, {'centered': True}, rmsprop, {'centered': True}),
    (optimizers.RMSprop, {'momentum': 0.5, 'centered': True, 'epsilon': 1e-3}, rmsprop,
     {'momentum': 0.5, 'centered': True, 'epsilon': 1e-3}),
    (optimizers.Adam, {'beta_1': 0.8, 'beta_2': 0.99}, adam, {'beta_1': 0.8, 'beta_2': 0.99}),
    (optimizers.Adam, {'amsgrad': True}, adam, {'amsgrad': True}),
    (optimizers.AdamW, {}, adam, {'weight_decay': 0.004}),
    (optimizers.AdamW, {'weight_decay': 0.1, 'amsgrad': True}, adam,
     {'weight_decay': 0.1, 'amsgrad': True}),
    (optimizers.Adagrad, {}, adagrad, {}),
    (optimizers.Adagrad, {'initial_accumulator_value': 0.0, 'epsilon': 1e-3}, adagrad,
     {'initial_accumulator_value': 0.0, 'epsilon': 1e-3}),
    (optimizers.Adadelta, {}, adadelta, {}),
    (optimizers.Adadelta, {'rho': 0.5}, adadelta, {'rho': 0.5}),
    (optimizers.Adamax, {}, adamax, {}),
    (optimizers.Adamax, {'beta_1': 0.5, 'beta_2': 0.9}, adamax, {'beta_1': 0.5, 'beta_2': 0.9}),
    (optimizers.Nadam, {}, nadam, {}),
    (optimizers.Nadam, {'beta_1': 0.7, 'beta_2': 0.9}, nadam, {'beta_1': 0.7, 'beta_2': 0.9}),
]
OPTIONS = [{}, {'clipnorm': 0.5}, {'clipvalue': 0.3}, {'global_clipnorm': 0.8},
           {'weight_decay': 0.05}]


def case_id(case):
    return f'{case[0].__name__}-{"-".join(f"{k}={v}" for k, v in case[1].items())}'


def two_weights():
    return [make_param(0, (3, 4)), make_param(1, (5,))]


def gradient_steps(seed=2, scale=1.0):
    rng = np.random.default_rng(seed)
    return [[(scale * rng.standard_normal(shape)).astype(np.float32) for shape in ((3, 4), (5,))]
            for _ in range(STEPS)]


def assert_trajectories(got, want):
    for step, (a, b) in enumerate(zip(got, want)):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6, err_msg=f'step {step + 1}')


@pytest.mark.parametrize('case', CASES, ids=case_id)
def test_update_matches_formula(case):
    cls, kwargs, rule, hyper = case
    params, steps = two_weights(), gradient_steps()
    w0 = [p.data.copy() for p in params]
    got = run_many(cls(learning_rate=0.01, **kwargs), params, steps)
    assert_trajectories(got, expected(rule, w0, steps, lambda t: 0.01, **hyper))


@pytest.mark.parametrize('option', OPTIONS, ids=lambda o: '-'.join(o) or 'none')
@pytest.mark.parametrize('case', [CASES[1], CASES[5], CASES[8], CASES[13], CASES[17]],
                         ids=case_id)
def test_clipping_and_weight_decay_come_before_the_update(case, option):
    cls, kwargs, rule, hyper = case
    params, steps = two_weights(), gradient_steps(scale=3.0)  # norms well above the limits
    w0 = [p.data.copy() for p in params]
    got = run_many(cls(learning_rate=0.05, **kwargs, **option), params, steps)
    assert_trajectories(got, expected(rule, w0, steps, lambda t: 0.05, **hyper, **option))


def test_clipping_leaves_the_gradients_given_alone():
    param = make_param()
    param.grad = np.full((3, 4), 10, np.float32)
    optimizers.SGD(0.1, clipvalue=1.0).step([param])
    np.testing.assert_array_equal(param.grad, 10)


def test_a_zero_gradient_is_not_clipped_into_nan():
    param = make_param()
    before = param.data.copy()
    for option in OPTIONS[1:4]:
        param.grad = np.zeros((3, 4), np.float32)
        optimizers.SGD(0.1, **option).step([param])
    np.testing.assert_array_equal(param.data, before)


def test_only_one_clipping_at_a_time():
    with pytest.raises(ValueError, match='clipnorm=1.0, clipvalue=2.0'):
        optimizers.Adam(clipnorm=1, clipvalue=2)


def test_weights_can_be_excluded_from_weight_decay():
    kernel, bias = make_param(0, (3, 4)), make_param(1, (5,))
    kernel.name, bias.name = 'dense/kernel', 'dense/bias'
    opt = optimizers.AdamW(0.01, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=['bias'])
    w0, steps = [kernel.data.copy(), bias.data.copy()], gradient_steps()
    got = run_many(opt, [kernel, bias], steps)
    decayed = expected(adam, w0[:1], [s[:1] for s in steps], lambda t: 0.01, weight_decay=0.5)
    kept = expected(adam, w0[1:], [s[1:] for s in steps], lambda t: 0.01)
    assert_trajectories(got, [a + b for a, b in zip(decayed, kept)])
    other = optimizers.SGD(0.1, weight_decay=0.5)
    other.exclude_from_weight_decay(var_list=[kernel])
    kernel.grad = np.zeros((3, 4), np.float32)
    before = kernel.data.copy()
    other.step([kernel])
    np.testing.assert_array_equal(kernel.data, before)


def test_adamw_needs_a_weight_decay():
    assert optimizers.AdamW().weight_decay == 0.004
    with pytest.raises(ValueError, match='weight_decay'):
        optimizers.AdamW(weight_decay=None)


def test_sgd_decay_shrinks_the_rate_each_iteration():
    params, steps = two_weights(), gradient_steps()
    w0 = [p.data.copy() for p in params]
    opt = optimizers.SGD(lr=0.1, momentum=0.9, decay=0.5)
    got = run_many(opt, params, steps)
    assert_trajectories(got, expected(sgd, w0, steps, lambda t: 0.1 / (1 + 0.5 * t),
                                      momentum=0.9))
    assert opt.iterations == STEPS
    assert opt.current_learning_rate() == pytest.approx(0.1 / (1 + 0.5 * STEPS))


# --- schedules ------------------------------------------------------------------------------
SCHEDULES = [
    (schedules.ExponentialDecay(0.1, 3, 0.5), lambda t: 0.1 * 0.5 ** (t / 3)),
    (schedules.ExponentialDecay(0.1, 3, 0.5, staircase=True), lambda t: 0.1 * 0.5 ** (t // 3)),
    (schedules.InverseTimeDecay(0.1, 2, 0.5), lambda t: 0.1 / (1 + 0.5 * t / 2)),
    (schedules.InverseTimeDecay(0.1, 2, 0.5, staircase=True), lambda t: 0.1 / (1 + 0.5 * (t // 2))),
    (schedules.PiecewiseConstantDecay([1, 3], [0.1, 0.05, 0.01]),
     lambda t: 0.1 if t <= 1 else 0.05 if t <= 3 else 0.01),
    (schedules.CosineDecay(0.1, 5, alpha=0.2),
     lambda t: 0.1 * (0.8 * 0.5 * (1 + math.cos(math.pi * min(t, 5) / 5)) + 0.2)),
    (schedules.CosineDecay(0.0, 4, warmup_target=0.1, warmup_steps=2),
     lambda t: 0.05 * t if t < 2 else 0.1 * 0.5 * (1 + math.cos(math.pi * min(t - 2, 4) / 4))),
]
SCHEDULE_IDS = [f'{type(s).__name__}-{i}' for i, (s, _) in enumerate(SCHEDULES)]


@pytest.mark.parametrize('schedule, formula', SCHEDULES, ids=SCHEDULE_IDS)
def test_schedules_follow_keras_formulas(schedule, formula):
    for step in range(12):
        assert schedule(step) == pytest.approx(formula(step), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize('schedule, formula', SCHEDULES[::2], ids=SCHEDULE_IDS[::2])
def test_a_schedule_sets_each_steps_rate(schedule, formula):
    params, steps = two_weights(), gradient_steps()
    w0 = [p.data.copy() for p in params]
    opt = optimizers.Adam(learning_rate=schedule, weight_decay=0.1)
    got = run_many(opt, params, steps)
    assert_trajectories(got, expected(adam, w0, steps, formula, weight_decay=0.1))
    assert float(opt.learning_rate) == pytest.approx(formula(STEPS))


def test_a_scheduled_rate_cannot_be_set():
    opt = optimizers.SGD(learning_rate=schedules.ExponentialDecay(0.1, 10, 0.9))
    with pytest.raises(TypeError, match='schedule'):
        opt.learning_rate = 0.01
    with pytest.raises(ValueError, match='read-only'):
        K.set_value(opt.learning_rate, 0.01)
    opt.learning_rate = schedules.CosineDecay(0.2, 10)  # another schedule replaces it, as Keras
    assert float(opt.lr) == pytest.approx(0.2)


def test_learning_rate_scheduler_on_a_schedule_is_a_clear_error():
    class Model:
        optimizer = optimizers.Adam(learning_rate=schedules.PiecewiseConstantDecay([5],
                                                                                   [0.1, 0.01]))
    scheduler = callbacks.LearningRateScheduler(lambda epoch, lr: lr / 2)
    scheduler.set_model(Model())
    with pytest.raises(TypeError, match='LearningRateScheduler'):
        scheduler.on_epoch_begin(0)


def test_schedule_and_decay_together_are_refused():
    with pytest.raises(ValueError, match='decay'):
        optimizers.SGD(learning_rate=schedules.ExponentialDecay(0.1, 10, 0.9), decay=0.1)


@pytest.mark.parametrize('kwargs', [dict(decay_steps=0), dict(decay_steps=-2)])
def test_schedule_arguments_are_checked(kwargs):
    with pytest.raises(ValueError, match='decay_steps'):
        schedules.ExponentialDecay(0.1, decay_rate=0.5, **kwargs)


def test_piecewise_constant_needs_one_more_value_than_boundaries():
    with pytest.raises(ValueError, match='one more value'):
        schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match='increase'):
        schedules.PiecewiseConstantDecay([2, 1], [0.1, 0.2, 0.3])


@pytest.mark.parametrize('schedule', [s for s, _ in SCHEDULES], ids=SCHEDULE_IDS)
def test_schedule_config_round_trip(schedule):
    opt = optimizers.RMSprop(learning_rate=schedule, momentum=0.5)
    config = opt.get_config()
    assert config['learning_rate'] == schedules.serialize(schedule)
    clone = optimizers.get({'class_name': 'RMSprop', 'config': config})
    assert clone.get_config() == config
    assert [clone.schedule(t) for t in range(8)] == [schedule(t) for t in range(8)]


def test_defaults_follow_keras():
    rmsprop = optimizers.RMSprop()
    assert (rmsprop.learning_rate, rmsprop.rho, rmsprop.epsilon) == (0.001, 0.9, 1e-7)
    sgd = optimizers.SGD()
    assert (sgd.learning_rate, sgd.momentum, sgd.nesterov, sgd.decay) == (0.01, 0.0, False, 0.0)
    adam = optimizers.Adam()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    assert (rmsprop.momentum, rmsprop.centered, adam.amsgrad) == (0.0, False, False)
    for opt in (rmsprop, sgd, adam):
        assert (opt.weight_decay, opt.clipnorm, opt.clipvalue, opt.global_clipnorm) == (None,) * 4
    adagrad, adadelta = optimizers.Adagrad(), optimizers.Adadelta()
    assert (adagrad.learning_rate, adagrad.initial_accumulator_value, adagrad.epsilon) == (
        0.001, 0.1, 1e-7)
    assert (adadelta.learning_rate, adadelta.rho, adadelta.epsilon) == (0.001, 0.95, 1e-7)
    for cls in (optimizers.Adamax, optimizers.Nadam, optimizers.AdamW):
        opt = cls()
        assert (opt.learning_rate, opt.beta_1, opt.beta_2, opt.epsilon) == (0.001, 0.9, 0.999,
                                                                            1e-7)


ALL = [optimizers.SGD, optimizers.RMSprop, optimizers.Adam, optimizers.AdamW, optimizers.Adagrad,
       optimizers.Adadelta, optimizers.Adamax, optimizers.Nadam]


@pytest.mark.parametrize('cls', ALL)
def test_lr_is_an_alias_of_learning_rate(cls):
    opt = cls(lr=1e-4)
    assert opt.learning_rate == opt.lr == 1e-4
    opt.lr = 2e-5
    assert opt.learning_rate == 2e-5


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match='momentom'):
        optimizers.SGD(momentom=0.9)


@pytest.mark.parametrize('kwargs', [{'learning_rate': -1}, {'momentum': 1.5}, {'decay': -0.1},
                                    {'weight_decay': -1}, {'clipnorm': -1}])
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
                                       ('ADAM', optimizers.Adam), ('adamw', optimizers.AdamW),
                                       ('Adagrad', optimizers.Adagrad),
                                       ('adadelta', optimizers.Adadelta),
                                       ('adamax', optimizers.Adamax), ('nadam', optimizers.Nadam)])
def test_get_by_name(name, cls):
    assert type(optimizers.get(name)) is cls


def test_get_passes_instances_through_and_rejects_unknown_names():
    opt = optimizers.SGD(0.5)
    assert optimizers.get(opt) is opt
    with pytest.raises(ValueError, match='sgd, rmsprop, adam, adamw, adagrad'):
        optimizers.get('ftrl')
    with pytest.raises(TypeError):
        optimizers.get(3)


def test_config_round_trip():
    opt = optimizers.SGD(lr=0.05, momentum=0.9, nesterov=True, decay=1e-3)
    config = opt.get_config()
    assert config == {'learning_rate': 0.05, 'momentum': 0.9, 'nesterov': True, 'decay': 1e-3,
                      'name': 'SGD', 'weight_decay': None, 'clipnorm': None, 'clipvalue': None,
                      'global_clipnorm': None}
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


@pytest.mark.parametrize('cls', ALL)
def test_every_optimizer_keeps_its_config(cls):
    opt = cls(learning_rate=0.02, clipvalue=0.5, weight_decay=0.01)
    clone = optimizers.get({'class_name': cls.__name__, 'config': opt.get_config()})
    assert type(clone) is cls and clone.get_config() == opt.get_config()


def test_adagrad_accumulator_starts_at_its_initial_value():
    param = make_param()
    param.grad = np.zeros((3, 4), np.float32)
    opt = optimizers.Adagrad(initial_accumulator_value=0.25)
    opt.step([param])
    np.testing.assert_array_equal(opt.slots(param)['accumulator'], 0.25)


def test_nadam_resumes_with_the_momentum_product_of_its_steps():
    params, steps = two_weights(), gradient_steps()
    w0 = [p.data.copy() for p in params]
    first = optimizers.Nadam(0.01)
    run_many(first, params, steps[:2])
    resumed = optimizers.Nadam(0.01)
    resumed.set_state(params, *first.get_state(params))
    assert resumed.u_product == pytest.approx(first.u_product, rel=1e-15)
    got = run_many(resumed, params, steps[2:])
    assert_trajectories(got, expected(nadam, w0, steps, lambda t: 0.01)[2:])


@pytest.mark.parametrize('cls', ALL)
def test_slots_follow_the_options(cls):
    names = {optimizers.SGD: (), optimizers.RMSprop: ('sq_avg',), optimizers.Adam: ('m', 'v'),
             optimizers.AdamW: ('m', 'v'), optimizers.Adagrad: ('accumulator',),
             optimizers.Adadelta: ('sq_avg', 'delta_sq_avg'), optimizers.Adamax: ('m', 'u'),
             optimizers.Nadam: ('m', 'v')}
    assert cls().slot_names == names[cls]
    assert optimizers.RMSprop(momentum=0.5, centered=True).slot_names == (
        'sq_avg', 'velocity', 'avg_grad')
    assert optimizers.Adam(amsgrad=True).slot_names == ('m', 'v', 'v_max')
