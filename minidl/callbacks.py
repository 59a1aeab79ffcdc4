"""Callbacks: code that ``fit`` runs at fixed points of training, as in Keras.

``fit`` calls, in order::

    on_train_begin
      on_epoch_begin(epoch)                        epoch counts from 0
        on_batch_begin(batch), on_batch_end(batch, logs)     for every training batch
      on_epoch_end(epoch, logs)                    after validation, if any
    on_train_end

and stops after any epoch that leaves ``model.stop_training`` true (``on_test_*`` hooks are
there for loops that report their evaluation batches). ``logs`` is a dict of
Python floats keyed by the names the user chose: ``{'loss': ..., 'acc': ..., 'val_loss': ...,
'val_acc': ...}`` at epoch end, and running means over the epoch so far in batch logs.
``self.params`` is ``{'epochs': int, 'steps': int or None, 'verbose': int}``.

Files written here are written safely: :class:`ModelCheckpoint` goes through the model's
``save`` (atomic), :class:`CSVLogger` flushes each row as the epoch ends.
"""
import csv
import math
import os
import re
import sys
import time
import warnings
from pathlib import Path

from tqdm import tqdm


class Callback:
    """Base class: every hook does nothing; subclasses override the ones they need.

    ``self.model`` is the model being trained and ``self.params`` the run's settings, both set
    by ``fit`` before ``on_train_begin``. ``writes_files``: in a distributed fit, only rank 0
    runs this callback (every rank runs the others).
    """

    writes_files = False

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        """Before the first epoch."""

    def on_train_end(self, logs=None):
        """After the last epoch (also when training stopped early)."""

    def on_epoch_begin(self, epoch, logs=None):
        """Before epoch ``epoch`` (0-based)."""

    def on_epoch_end(self, epoch, logs=None):
        """After epoch ``epoch``, validation included; ``logs`` holds its final metrics."""

    def on_batch_begin(self, batch, logs=None):
        """Before training batch ``batch`` (0-based within the epoch)."""
        self.on_train_batch_begin(batch, logs)

    def on_batch_end(self, batch, logs=None):
        """After training batch ``batch``; ``logs`` holds the epoch's running metrics."""
        self.on_train_batch_end(batch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        """The Keras 2.3+ name of :meth:`on_batch_begin`; override either."""

    def on_train_batch_end(self, batch, logs=None):
        """The Keras 2.3+ name of :meth:`on_batch_end`; override either."""

    def on_test_begin(self, logs=None):
        """Before validation (or ``evaluate``) starts."""

    def on_test_end(self, logs=None):
        """After validation (or ``evaluate``); ``logs`` holds its metrics."""

    def on_test_batch_begin(self, batch, logs=None):
        """Before validation batch ``batch``."""

    def on_test_batch_end(self, batch, logs=None):
        """After validation batch ``batch``."""


HOOKS = tuple(name for name in vars(Callback) if name.startswith('on_'))
INDEXED_HOOKS = tuple(name for name in HOOKS if 'epoch' in name or 'batch' in name)


class CallbackList:
    """Many callbacks seen as one: ``callbacks.on_epoch_end(epoch, logs)`` calls each in turn.

    ``add_history=True`` appends a :class:`History` (kept as ``.history``, which ``fit``
    returns) and ``add_progbar=True`` puts a :class:`ProgbarLogger` first, as Keras does.
    """

    def __init__(self, callbacks=None, model=None, params=None, add_history=False,
                 add_progbar=False):
        self.callbacks = list(callbacks or [])
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f'callbacks must be Callback instances, got '
                                f'{type(callback).__name__}: {callback!r}')
        if add_progbar:
            self.callbacks.insert(0, ProgbarLogger())
        self.history = History() if add_history else None
        if self.history is not None:
            self.callbacks.append(self.history)
        if model is not None:
            self.set_model(model)
        if params is not None:
            self.set_params(params)

    def set_model(self, model):
        for callback in self.callbacks:
            callback.set_model(model)

    def set_params(self, params):
        for callback in self.callbacks:
            callback.set_params(params)

    def __getattr__(self, hook):
        """``on_*`` hooks: a function calling that hook on every callback, in order.

        Hooks take ``(epoch or batch, logs)`` or just ``(logs)``; the callbacks always
        receive ``logs``, as ``{}`` when the caller gave none.
        """
        if hook not in HOOKS:
            raise AttributeError(f'{type(self).__name__} has no attribute {hook!r}')
        arity = 2 if hook in INDEXED_HOOKS else 1

        def dispatch(*args):
            *index, logs = (*args, None)[:arity]
            for callback in self.callbacks:
                getattr(callback, hook)(*index, {} if logs is None else logs)
        return dispatch

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)


_ACCURACY = re.compile(r'(?:^|_)(acc|accuracy)$')


def other_spelling(key):
    """The log name with Keras's other spelling of accuracy at its end ('acc' <-> 'accuracy',
    'val_out_acc' <-> 'val_out_accuracy'); None for a name that does not end so."""
    match = _ACCURACY.search(key) if isinstance(key, str) else None
    if match is None:
        return None
    return key[:match.start(1)] + ('accuracy' if match.group(1) == 'acc' else 'acc')


class HistoryDict(dict):
    """Per-epoch values by log name that also answer to the other spelling of accuracy:
    lessons written for different Keras versions read ``'acc'`` or ``'accuracy'`` whichever
    the metric was compiled with. Keys, iteration and equality hold only the names logged,
    as Keras's dict does."""

    def __missing__(self, key):
        twin = other_spelling(key)
        if twin is None or not dict.__contains__(self, twin):
            raise KeyError(key)
        return dict.__getitem__(self, twin)

    def __contains__(self, key):
        return dict.__contains__(self, key) or dict.__contains__(self, other_spelling(key))

    def get(self, key, default=None):
        return self[key] if key in self else default


class History(Callback):
    """Records the epoch-end logs: ``history.history['val_acc'][e]`` is epoch ``e``'s value
    (a :class:`HistoryDict`, so ``'val_accuracy'`` finds it too).

    ``fit`` returns this object; ``.epoch`` lists the epoch indices, ``.params`` the run's
    settings and ``.model`` the model.
    """

    def __init__(self):
        super().__init__()
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        self.epoch = []
        self.history = HistoryDict()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))


class ProgbarLogger(Callback):
    """Prints training progress to stdout, following ``params['verbose']``.

    - ``verbose=1`` on a terminal: ``Epoch 1/5`` then a live bar with the running metrics,
      which the epoch's one-line summary (below) replaces when the epoch ends: the bar is
      trimmed to the terminal's width, which would cut the validation figures off.
    - ``verbose=1`` elsewhere (a log file, a notebook that keeps every redraw, a terminal that
      reports zero columns, as under ``script``, where a bar would be trimmed to nothing) and
      ``verbose=2``: ``Epoch 1/5`` then one line when the epoch ends, e.g.
      ``938/938 - 12s - loss: 0.1734 - acc: 0.9462 - val_loss: 0.0613 - val_acc: 0.9801``.
    - ``verbose=0``: nothing.
    """

    def __init__(self):
        super().__init__()
        self._bar = None
        self._seen = 0
        self._start = 0.0

    def _verbose(self):
        return self.params.get('verbose', 1)

    def _live(self):
        return self._verbose() == 1 and terminal_columns(sys.stdout) > 0

    def on_epoch_begin(self, epoch, logs=None):
        if not self._verbose():
            return
        self._seen = 0
        self._start = time.perf_counter()
        print(f'Epoch {epoch + 1}/{self.params.get("epochs", "?")}', flush=True)
        if self._live():
            self._bar = tqdm(total=self.params.get('steps'), file=sys.stdout, ascii='.=',
                             leave=False, bar_format='{n_fmt}/{total_fmt} [{bar:30}] '
                                        '{elapsed}<{remaining}{postfix}')

    def on_batch_end(self, batch, logs=None):
        self._seen += 1
        if self._bar is not None:
            self._bar.set_postfix_str(format_logs(logs), refresh=False)
            self._bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._verbose():
            steps = self.params.get('steps') or self._seen
            elapsed = format_duration(time.perf_counter() - self._start)
            print(f'{self._seen}/{steps} - {elapsed} - {format_logs(logs)}', flush=True)

    def on_train_end(self, logs=None):
        if self._bar is not None:  # training was interrupted mid-epoch: keep the bar's line
            self._bar.leave = True
            self._bar.close()
            self._bar = None


def terminal_columns(stream):
    """The width of the terminal ``stream`` writes to: 0 when it is not a terminal, or is one
    that reports no size."""
    try:
        return os.get_terminal_size(stream.fileno()).columns if stream.isatty() else 0
    except (OSError, ValueError):  # no file descriptor behind the stream
        return 0


def format_logs(logs):
    """``'loss: 0.1734 - acc: 0.9462'``: 4 decimals, or scientific notation for tiny values."""
    return ' - '.join(f'{key}: {value:.4f}' if abs(value) > 1e-3 else f'{key}: {value:.4e}'
                      for key, value in (logs or {}).items())


def format_duration(seconds):
    """``'12s'``, or ``'340ms'`` under a second."""
    return f'{seconds:.0f}s' if seconds >= 1 else f'{seconds * 1000:.0f}ms'


class _Monitor:
    """Which logged quantity a callback watches, and which direction counts as better.

    ``mode='auto'`` maximises names containing 'acc' (``acc``, ``val_accuracy``) and minimises
    the rest (losses). An improvement must beat the reference by more than ``min_delta``.
    """

    def __init__(self, owner, monitor, mode, min_delta=0.0):
        if mode not in ('auto', 'min', 'max'):
            raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.owner = owner
        self.name = monitor
        self.maximize = mode == 'max' or (mode == 'auto' and 'acc' in monitor)
        self.min_delta = abs(min_delta)
        self.worst = -math.inf if self.maximize else math.inf

    def improves(self, current, reference):
        """True when ``current`` beats ``reference`` by more than ``min_delta``."""
        if self.maximize:
            return current - self.min_delta > reference
        return current + self.min_delta < reference

    def read(self, logs):
        """The monitored value from ``logs``, or None (with a warning) when it is missing."""
        value = (logs or {}).get(self.name)
        if value is None:
            warnings.warn(f'{self.owner} monitors {self.name!r}, which is not in the logs '
                          f'(available: {", ".join(logs or {}) or "none"}); did you pass '
                          'validation data?', RuntimeWarning, stacklevel=3)
        return value


class EarlyStopping(Callback):
    """Stop training when the monitored quantity has stopped improving.

    After ``patience`` epochs in a row without an improvement (by more than ``min_delta``) it
    sets ``model.stop_training``. With ``baseline``, the wait only resets on epochs that also
    beat the baseline. With ``restore_best_weights=True`` the model ends training with the
    weights of its best epoch.
    """

    def __init__(self, monitor='val_loss', min_delta=0.0, patience=0, verbose=0, mode='auto',
                 baseline=None, restore_best_weights=False):
        super().__init__()
        self.monitor = _Monitor('EarlyStopping', monitor, mode, min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        """Start a fresh run: no best value yet, nothing waited for."""
        self.wait = 0
        self.stopped_epoch = 0  # 0: did not stop early (it never stops after the first epoch)
        self.best = self.monitor.worst
        self.best_epoch = None
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = self.monitor.read(logs)
        if current is None:
            return
        self.wait += 1
        if self.monitor.improves(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self.monitor.improves(current, self.baseline):
                self.wait = 0
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch and self.verbose:
            print(f'Epoch {self.stopped_epoch + 1}: early stopping')
        if self.best_weights is not None:
            if self.verbose:
                print(f'Restoring the weights of epoch {self.best_epoch + 1}, the best one.')
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (or only its weights) at the end of each epoch.

    ``filepath`` may hold format fields filled from the epoch (1-based) and its logs, e.g.
    ``'weights.{epoch:02d}-{val_loss:.2f}.h5'``. With ``save_best_only=True`` a file is
    written only when the monitored quantity improves on the best so far.
    """

    writes_files = True

    def __init__(self, filepath, monitor='val_loss', verbose=0, save_best_only=False,
                 save_weights_only=False, mode='auto'):
        super().__init__()
        self.filepath = str(filepath)
        self.monitor = _Monitor('ModelCheckpoint', monitor, mode)
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.best = self.monitor.worst

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            current = self.monitor.read(logs)
            if current is None:
                return
            if not self.monitor.improves(current, self.best):
                self._say(f'{self.monitor.name} did not improve from {self.best:.5f}', epoch)
                return
            previous, self.best = self.best, current
            self._say(f'{self.monitor.name} improved from {previous:.5f} to {current:.5f}',
                      epoch)
        self._save(self._path(epoch, logs), epoch)

    def _path(self, epoch, logs):
        try:
            return Path(self.filepath.format(epoch=epoch + 1, **logs))
        except KeyError as exc:
            raise ValueError(f'ModelCheckpoint: filepath {self.filepath!r} names {exc}, which is '
                             f'not among the epoch logs (available: epoch, '
                             f'{", ".join(logs)})') from None

    def _save(self, path, epoch):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._say(f'saving {"weights" if self.save_weights_only else "model"} to {path}', epoch)
        if self.save_weights_only:
            self.model.save_weights(str(path))
        else:
            self.model.save(str(path))

    def _say(self, message, epoch):
        if self.verbose:
            print(f'Epoch {epoch + 1}: {message}')


class CSVLogger(Callback):
    """Append one CSV row per epoch: ``epoch`` then the logs, columns in sorted order.

    ``append=True`` continues an existing file (without repeating its header). Each row is
    flushed when its epoch ends, so the file is readable while training runs.
    """

    writes_files = True

    def __init__(self, filename, separator=',', append=False):
        super().__init__()
        self.filename = Path(filename)
        self.separator = separator
        self.append = append
        self._file = None
        self._writer = None
        self._header_written = False

    def on_train_begin(self, logs=None):
        has_rows = self.append and self.filename.exists() and self.filename.stat().st_size > 0
        self._header_written = has_rows
        self.filename.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.filename, 'a' if self.append else 'w', newline='',
                          encoding='utf-8')
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, ['epoch', *sorted(logs)],
                                          delimiter=self.separator, restval='NA',
                                          extrasaction='ignore')
            if not self._header_written:
                self._writer.writeheader()
        self._writer.writerow({'epoch': epoch, **logs})
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


class LambdaCallback(Callback):
    """A callback made of plain functions, for one-off needs::

        LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs['loss']))

    Each function takes the hook's arguments: ``(epoch, logs)``, ``(batch, logs)`` or
    ``(logs)``. Other hooks (``on_test_end=...``) may be given by name as well.
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_batch_begin=None,
                 on_batch_end=None, on_train_begin=None, on_train_end=None, **other_hooks):
        super().__init__()
        unknown = sorted(set(other_hooks) - set(HOOKS))
        if unknown:
            raise TypeError(f'LambdaCallback: unknown hook(s) {", ".join(unknown)}; hooks are '
                            f'{", ".join(HOOKS)}')
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_batch_begin=on_batch_begin, on_batch_end=on_batch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end, **other_hooks)
        for hook, function in hooks.items():
            if function is not None:
                setattr(self, hook, function)


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate at the start of each epoch from
    ``schedule(epoch, lr) -> new_lr`` (epoch counts from 0), as Keras's callback does."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        optimizer.learning_rate = self.schedule(epoch, float(optimizer.learning_rate))
        if self.verbose:
            print(f'Epoch {epoch + 1}: learning rate is {float(optimizer.learning_rate):.4g}.')
