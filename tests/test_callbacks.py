"""Callbacks, driven by a small stand-in for ``fit`` over a fake model."""
import csv
import os

import numpy as np
import pytest

from minidl import callbacks, optimizers


class FakeModel:
    """What callbacks may touch: weights, saving, and the stop flag."""

    def __init__(self):
        self.weights = [np.zeros(2)]
        self.stop_training = False
        self.saved = []

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [w.copy() for w in weights]

    def save(self, filepath):
        self.saved.append(('model', filepath))
        open(filepath, 'w').close()

    def save_weights(self, filepath):
        self.saved.append(('weights', filepath))
        open(filepath, 'w').close()


def fit(model, cbs, epoch_logs, steps=3, verbose=0):
    """Run the callback protocol the way ``fit`` does; the weights are [epoch, epoch]."""
    cb_list = callbacks.CallbackList(cbs, model=model, add_history=True, add_progbar=True,
                                     params={'epochs': len(epoch_logs), 'steps': steps,
                                             'verbose': verbose})
    cb_list.on_train_begin()
    for epoch, logs in enumerate(epoch_logs):
        cb_list.on_epoch_begin(epoch)
        for batch in range(steps):
            cb_list.on_batch_begin(batch)
            model.weights = [np.full(2, float(epoch))]
            cb_list.on_batch_end(batch, dict(logs))
        cb_list.on_epoch_end(epoch, dict(logs))
        if model.stop_training:
            break
    cb_list.on_train_end()
    return cb_list.history


def losses(*val_losses):
    return [{'loss': 1.0, 'val_loss': v} for v in val_losses]


def test_history_records_every_epoch():
    model = FakeModel()
    history = fit(model, [], [{'loss': 0.5, 'acc': 0.8}, {'loss': 0.25, 'acc': 0.9}])
    assert history.history == {'loss': [0.5, 0.25], 'acc': [0.8, 0.9]}
    assert history.epoch == [0, 1]
    assert history.params['epochs'] == 2 and history.model is model


@pytest.mark.parametrize('logged, other', [('acc', 'accuracy'), ('accuracy', 'acc')])
def test_history_answers_to_both_spellings_of_accuracy_but_lists_the_logged_one(logged, other):
    logs = {'loss': 0.5, logged: 0.8, f'val_{logged}': 0.7, f'out_{logged}': 0.6}
    history = fit(FakeModel(), [], [logs, logs]).history
    assert list(history) == list(history.keys()) == list(logs)
    assert history == {key: [value, value] for key, value in logs.items()}
    for key in ('', 'val_', 'out_'):
        assert history[key + other] is history[key + logged]
        assert key + other in history and history.get(key + other) == history[key + logged]
    assert history.get('val_loss') is None and 'val_loss' not in history
    with pytest.raises(KeyError, match='val_loss'):
        history['val_loss']
    assert callbacks.other_spelling('lacc') is None


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    model, stopper = FakeModel(), callbacks.EarlyStopping(patience=2)
    history = fit(model, [stopper], losses(0.9, 0.5, 0.6, 0.55, 0.4, 0.3))
    assert history.epoch == [0, 1, 2, 3]  # best at epoch 1, then two epochs without
    assert stopper.stopped_epoch == 3 and stopper.best == 0.5
    assert model.weights[0][0] == 3.0  # weights are left as they are by default


def test_early_stopping_restores_the_best_weights():
    model = FakeModel()
    stopper = callbacks.EarlyStopping(patience=1, restore_best_weights=True)
    fit(model, [stopper], losses(0.9, 0.5, 0.7, 0.8))
    assert stopper.stopped_epoch == 2
    np.testing.assert_array_equal(model.weights[0], [1.0, 1.0])


def test_early_stopping_on_accuracy_maximises_and_honours_min_delta():
    model = FakeModel()
    stopper = callbacks.EarlyStopping(monitor='val_acc', patience=1, min_delta=0.01)
    logs = [{'val_acc': a} for a in (0.80, 0.805, 0.9)]
    history = fit(model, [stopper], logs)
    assert history.epoch == [0, 1]  # +0.005 is below min_delta: no improvement


def test_early_stopping_baseline_must_be_beaten():
    model = FakeModel()
    stopper = callbacks.EarlyStopping(patience=2, baseline=0.1)
    history = fit(model, [stopper], losses(0.5, 0.4, 0.3, 0.2))
    assert history.epoch == [0, 1]


def test_missing_monitor_warns_and_does_not_stop():
    model = FakeModel()
    with pytest.warns(RuntimeWarning, match="'val_loss'.*available: loss"):
        history = fit(model, [callbacks.EarlyStopping()], [{'loss': 1.0}] * 3)
    assert len(history.epoch) == 3


def test_invalid_mode_is_a_value_error():
    with pytest.raises(ValueError, match="'auto', 'min' or 'max'"):
        callbacks.EarlyStopping(mode='best')


def test_checkpoint_save_best_only_writes_only_on_improvement(tmp_path):
    model = FakeModel()
    path = tmp_path / 'ckpt' / 'model-{epoch:02d}-{val_loss:.2f}.h5'
    checkpoint = callbacks.ModelCheckpoint(path, save_best_only=True)
    fit(model, [checkpoint], losses(0.9, 0.5, 0.7, 0.4))
    names = [p.name for p in sorted((tmp_path / 'ckpt').iterdir())]
    assert names == ['model-01-0.90.h5', 'model-02-0.50.h5', 'model-04-0.40.h5']
    assert [kind for kind, _ in model.saved] == ['model'] * 3


def test_checkpoint_every_epoch_weights_only(tmp_path):
    model = FakeModel()
    checkpoint = callbacks.ModelCheckpoint(tmp_path / 'w.h5', save_weights_only=True)
    fit(model, [checkpoint], losses(0.9, 0.5, 0.7))
    assert model.saved == [('weights', str(tmp_path / 'w.h5'))] * 3


def test_checkpoint_with_an_unknown_field_names_it(tmp_path):
    checkpoint = callbacks.ModelCheckpoint(tmp_path / '{val_acc:.2f}.h5')
    with pytest.raises(ValueError, match="'val_acc'"):
        fit(FakeModel(), [checkpoint], losses(0.9))


def test_csv_logger_writes_a_row_per_epoch_and_appends(tmp_path):
    file = tmp_path / 'log.csv'
    logs = [{'loss': 0.5, 'acc': 0.8, 'val_loss': 0.6}, {'loss': 0.25, 'acc': 0.9, 'val_loss': 0.4}]
    fit(FakeModel(), [callbacks.CSVLogger(file)], logs)
    fit(FakeModel(), [callbacks.CSVLogger(file, append=True)], logs[:1])
    rows = list(csv.reader(file.open()))
    assert rows == [['epoch', 'acc', 'loss', 'val_loss'], ['0', '0.8', '0.5', '0.6'],
                    ['1', '0.9', '0.25', '0.4'], ['0', '0.8', '0.5', '0.6']]


def test_csv_logger_separator_and_overwrite(tmp_path):
    file = tmp_path / 'log.tsv'
    file.write_text('old\n')
    fit(FakeModel(), [callbacks.CSVLogger(file, separator='\t')], [{'loss': 0.5}])
    assert file.read_text().splitlines() == ['epoch\tloss', '0\t0.5']


def test_lambda_callback_calls_the_given_functions():
    seen = []
    cb = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append((epoch, logs)),
                                  on_train_end=lambda logs: seen.append('end'),
                                  on_test_begin=lambda logs: None)
    fit(FakeModel(), [cb], losses(0.5, 0.4))
    assert seen == [(0, {'loss': 1.0, 'val_loss': 0.5}), (1, {'loss': 1.0, 'val_loss': 0.4}),
                    'end']
    with pytest.raises(TypeError, match='on_epoch_finish'):
        callbacks.LambdaCallback(on_epoch_finish=print)


def test_keras_2_3_batch_hook_names_are_called():
    class Counter(callbacks.Callback):
        batches = 0

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1
    counter = Counter()
    fit(FakeModel(), [counter], losses(0.5, 0.4), steps=3)
    assert counter.batches == 6


def test_callback_list_rejects_non_callbacks_and_unknown_hooks():
    with pytest.raises(TypeError, match='Callback instances'):
        callbacks.CallbackList([print])
    with pytest.raises(AttributeError):
        callbacks.CallbackList([]).on_epoch_finish


def test_progbar_prints_one_line_per_epoch_when_not_a_terminal(capsys):
    logs = [{'loss': 0.17341, 'acc': 0.94618, 'val_loss': 0.0613, 'val_acc': 0.98012},
            {'loss': 0.0001234, 'acc': 0.99, 'val_loss': 0.05, 'val_acc': 0.985}]
    fit(FakeModel(), [], logs, steps=938, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == 'Epoch 1/2'
    assert lines[1].startswith('938/938 - ')
    assert lines[1].endswith(' - loss: 0.1734 - acc: 0.9462 - val_loss: 0.0613 - val_acc: 0.9801')
    assert lines[2] == 'Epoch 2/2'
    assert 'loss: 1.2340e-04 - acc: 0.9900' in lines[3]
    assert len(lines) == 4


def test_progbar_verbose_2_is_one_line_and_verbose_0_is_silent(capsys):
    fit(FakeModel(), [], losses(0.5), verbose=2)
    assert capsys.readouterr().out.splitlines()[1].startswith('3/3 - ')
    fit(FakeModel(), [], losses(0.5), verbose=0)
    assert capsys.readouterr().out == ''


def pretend_stdout_is_a_terminal(monkeypatch, columns):
    """sys.stdout answers as a terminal ``columns`` wide would."""
    monkeypatch.setattr('sys.stdout.isatty', lambda: True)
    monkeypatch.setattr('sys.stdout.fileno', lambda: 1)
    monkeypatch.setattr(os, 'get_terminal_size', lambda fd: os.terminal_size((columns, 24)))


def test_progbar_draws_a_live_bar_on_a_terminal_then_the_whole_summary(monkeypatch, capsys):
    pretend_stdout_is_a_terminal(monkeypatch, columns=40)
    fit(FakeModel(), [], losses(0.5), steps=5, verbose=1)
    out = capsys.readouterr().out
    assert out.startswith('Epoch 1/1\n')
    assert '0/5 [' in out and '\r' in out
    summary = out.splitlines()[-1].split('\r')[-1]  # what the terminal shows last
    assert summary.startswith('5/5 - ') and summary.endswith(' - val_loss: 0.5000')


def test_progbar_on_a_terminal_of_zero_columns_prints_one_line_per_epoch(monkeypatch, capsys):
    pretend_stdout_is_a_terminal(monkeypatch, columns=0)
    fit(FakeModel(), [], losses(0.5), steps=5, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == 'Epoch 1/1' and lines[1].startswith('5/5 - ')
    assert lines[1].endswith(' - val_loss: 0.5000') and len(lines) == 2


def test_learning_rate_scheduler_sets_the_rate_each_epoch(capsys):
    model = FakeModel()
    model.optimizer = optimizers.RMSprop(learning_rate=1e-3)
    seen = []
    fit(model, [callbacks.LearningRateScheduler(lambda epoch, lr: lr / 2 if epoch else lr,
                                                verbose=1),
                callbacks.LambdaCallback(
                    on_epoch_begin=lambda epoch, logs: seen.append(float(model.optimizer.lr)))],
        losses(1, 1, 1))
    assert seen == [1e-3, 5e-4, 2.5e-4]
    assert 'Epoch 2: learning rate is 0.0005.' in capsys.readouterr().out
