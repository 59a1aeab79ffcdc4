"""compile / fit / evaluate / predict: the Keras training loop, mixed into every Model.

One training step: forward with ``training=True``, loss, ``backward()``, one optimizer update of
the trainable weights. When the model's output activation matches the loss (softmax with a
categorical cross-entropy, sigmoid with the binary one) the loss is computed from the logits in
its fused, stable form, and the metrics from the probabilities.
"""
import math
import sys

import numpy as np

import minidl.functions as F
from minidl import callbacks as callbacks_module
from minidl import losses, metrics as metrics_module, optimizers, random
from minidl.autograd import Tensor, no_grad
from minidl.backends import check_device, to_device
from minidl.utils import as_list


class TrainingStopped(Exception):
    """Raised inside the loop when the loss stops being finite."""


def _batches(x, y, batch_size, shuffle):
    """Yield (x, y) NumPy batches over arrays, reshuffled each time it is called."""
    count = len(x)
    order = random.generator().permutation(count) if shuffle else np.arange(count)
    for start in range(0, count, batch_size):
        index = order[start:start + batch_size]
        if not shuffle:
            index = slice(start, start + batch_size)
        yield x[index], None if y is None else y[index]


def _is_iterator(x):
    return hasattr(x, '__next__') or (hasattr(x, '__iter__') and not hasattr(x, 'shape')
                                      and not isinstance(x, (list, tuple)))


class _Source:
    """Batches for one pass: from arrays (with batch_size) or from an iterable of batches
    (a generator, a directory iterator, a dataset), ``steps`` batches per pass."""

    def __init__(self, x, y=None, batch_size=32, steps=None, shuffle=False):
        self.stream = _is_iterator(x)
        if self.stream:
            self.source, self.iterator = x, iter(x)
            self.steps = steps or (len(x) if hasattr(x, '__len__') else None)
            if self.steps is None:
                raise ValueError('steps_per_epoch (or steps) is needed when x is a generator '
                                 'without a length')
        else:
            self.x, self.y = np.asarray(x), None if y is None else np.asarray(y)
            if self.y is not None and len(self.y) != len(self.x):
                raise ValueError(f'x has {len(self.x)} examples but y has {len(self.y)}')
            self.steps = steps or math.ceil(len(self.x) / batch_size)
        self.batch_size, self.shuffle = batch_size, shuffle

    def epoch(self):
        if not self.stream:
            yield from _batches(self.x, self.y, self.batch_size, self.shuffle)
            return
        for _ in range(self.steps):
            batch = self._next()
            if isinstance(batch, (tuple, list)):
                yield batch[0], batch[1] if len(batch) > 1 else None
            else:
                yield batch, None

    def _next(self):
        """The next batch; a finite, re-iterable source starts over when it runs out."""
        try:
            return next(self.iterator)
        except StopIteration:
            self.iterator = iter(self.source)
            return next(self.iterator)


class _Averages:
    """Example-weighted running means of the loss and the metrics over one pass."""

    def __init__(self):
        self.sums, self.count = {}, 0

    def add(self, values, n):
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value * n
        self.count += n

    def means(self, prefix=''):
        return {prefix + k: v / max(self.count, 1) for k, v in self.sums.items()}


class Trainer:
    """The training API of :class:`minidl.models.Model`."""

    optimizer = loss = None
    metrics = ()
    stop_training = False

    def compile(self, optimizer='rmsprop', loss=None, metrics=None):
        """Choose the optimizer, the loss and the metrics (names or objects, as in Keras)."""
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss) if loss is not None else None
        self.metrics = [metrics_module.get(m, getattr(self.loss, 'name', None))
                        for m in metrics or []]
        self.compiled_metric_names = list(metrics or [])

    def _check_compiled(self):
        if self.loss is None:
            raise RuntimeError(f'{self.name}: call compile(optimizer, loss, metrics) before '
                               f'fit or evaluate')

    # --- one batch --------------------------------------------------------------------------
    def _fused(self):
        return self.loss.fused_activation is not None and \
            self.loss.fused_activation == self.activation

    def _loss_and_predictions(self, x, y, training):
        """The loss Tensor and the predicted probabilities (raw array) for one batch."""
        if not self.built:
            self.build((None,) + np.shape(x)[1:])
        x = Tensor(to_device(np.asarray(x, dtype=_input_dtype(x)), self.device))
        y = to_device(np.asarray(y), self.device)
        if self._fused():
            logits = self.call_logits(x, training)
            loss = self.loss.from_logits(y, logits)
            with no_grad():
                predictions = F.bias_act(logits.detach(), None, self.activation).data
        else:
            outputs = self(x, training)
            loss = self.loss(y, outputs)
            predictions = outputs.data
        return loss, predictions, y

    def _batch_logs(self, loss, predictions, y):
        logs = {'loss': float(loss.item())}
        for name, fn in self.metrics:
            logs[name] = float(fn(y, predictions).mean())
        return logs

    def train_on_batch(self, x, y):
        """One optimizer step on one batch; returns the batch's logs (loss and metrics)."""
        self._check_compiled()
        loss, predictions, y = self._loss_and_predictions(x, y, training=True)
        weights = self.trainable_weights
        for w in weights:
            w.grad = None
        loss.backward()
        self.optimizer.step(weights)
        return self._batch_logs(loss, predictions, y)

    def test_on_batch(self, x, y):
        self._check_compiled()
        with no_grad():
            loss, predictions, y = self._loss_and_predictions(x, y, training=False)
        return self._batch_logs(loss, predictions, y)

    # --- whole passes -----------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=32, epochs=1, verbose=1, callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, device=None):
        """Train for ``epochs``; returns a History whose ``.history`` maps each log name
        ('loss', the metric names as given, and their 'val_' twins) to per-epoch values."""
        self._check_compiled()
        if device is not None:
            self.to(check_device(device))
        if validation_split and validation_data is None and not _is_iterator(x):
            x, y, validation_data = _split(x, y, validation_split)
        source = _Source(x, y, batch_size, steps_per_epoch, shuffle)
        validation = None if validation_data is None else _validation_source(
            validation_data, batch_size, validation_steps)
        cbs = callbacks_module.CallbackList(callbacks, model=self, add_history=True,
                                            add_progbar=verbose > 0,
                                            params={'epochs': epochs, 'steps': source.steps,
                                                    'verbose': verbose})
        self.stop_training = False
        cbs.on_train_begin()
        try:
            for epoch in range(initial_epoch, epochs):
                cbs.on_epoch_begin(epoch)
                logs = self._train_epoch(source, cbs, epoch)
                if validation is not None:
                    logs.update(self._run_test(validation, cbs).means('val_'))
                cbs.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
        except TrainingStopped as stop:
            print(f'minidl: {stop}', file=sys.stderr)
        cbs.on_train_end()
        return cbs.history

    fit_generator = fit

    def _train_epoch(self, source, cbs, epoch):
        averages = _Averages()
        for batch, (xb, yb) in enumerate(source.epoch()):
            cbs.on_batch_begin(batch)
            logs = self.train_on_batch(xb, yb)
            if not math.isfinite(logs['loss']):
                raise TrainingStopped(f'training stopped: the loss became {logs["loss"]} at '
                                      f'batch {batch + 1} of epoch {epoch + 1}; lower the '
                                      f'learning rate or check the inputs for NaN/inf')
            averages.add(logs, len(xb))
            cbs.on_batch_end(batch, averages.means())
        return averages.means()

    def _run_test(self, source, cbs=None):
        averages = _Averages()
        for xb, yb in source.epoch():
            averages.add(self.test_on_batch(xb, yb), len(xb))
        return averages

    def evaluate(self, x=None, y=None, batch_size=32, verbose=1, steps=None):
        """``[loss, metric, ...]`` over the data (the loss alone when there are no metrics)."""
        self._check_compiled()
        means = self._run_test(_Source(x, y, batch_size, steps)).means()
        if verbose:
            print(' - '.join(f'{k}: {v:.4f}' for k, v in means.items()))
        values = [means['loss']] + [means[name] for name, _ in self.metrics]
        return values if len(values) > 1 else values[0]

    evaluate_generator = evaluate

    def predict(self, x, batch_size=32, verbose=0, steps=None):
        """The model's outputs as a NumPy array (a list of arrays for a model with several
        outputs, such as the lessons' activation model), computed batch by batch without a
        graph."""
        batches = []
        with no_grad():
            for xb, _ in _Source(x, None, batch_size, steps).epoch():
                xb = Tensor(to_device(np.asarray(xb, dtype=_input_dtype(xb)), self.device))
                batches.append([y.numpy() for y in as_list(self(xb, training=False))])
        outputs = [np.concatenate(parts) for parts in zip(*batches)]
        return outputs if len(outputs) > 1 else outputs[0]

    predict_generator = predict


def _input_dtype(x):
    """Integer inputs (token ids) stay integers; everything else becomes float32."""
    return None if np.issubdtype(np.asarray(x).dtype, np.integer) else np.float32


def _split(x, y, fraction):
    """Keras's validation_split: the last ``fraction`` of the examples, taken before shuffling."""
    x, y = np.asarray(x), np.asarray(y)
    cut = int(len(x) * (1 - fraction))
    return x[:cut], y[:cut], (x[cut:], y[cut:])


def _validation_source(data, batch_size, steps):
    if _is_iterator(data):
        return _Source(data, None, batch_size, steps)
    return _Source(data[0], data[1], batch_size, steps)
