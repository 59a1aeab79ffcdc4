"""compile / fit / evaluate / predict: the Keras training loop, mixed into every Model.

One training step: forward with ``training=True``, loss, ``backward()``, one optimizer update of
the trainable weights. When the model's output activation matches the loss (softmax with a
categorical cross-entropy, sigmoid with the binary one) the loss is computed from the logits in
its fused, stable form, and the metrics from the probabilities.

Nothing runs on arguments or data that cannot train: batch sizes, epochs, steps and
``validation_split`` are checked before the first batch, and so are empty inputs, missing
targets and ``x``/``y`` of different lengths. An error raised inside a batch (a label outside
the classes, a target of the wrong shape) is re-raised as a ValueError that starts with the
batch and, for arrays, the examples it held: ``batch 4 of epoch 1 (examples 192-255 of x): ...``.
A generator that runs out before ``steps_per_epoch`` says how many batches it gave.
"""
import math
import sys

import numpy as np

import minidl.functions as F
from minidl import callbacks as callbacks_module
from minidl import losses, metrics as metrics_module, optimizers, random
from minidl.autograd import Tensor, no_grad
from minidl.backends import check_device, to_device
from minidl.layers import arguments
from minidl.utils import as_list


class TrainingStopped(Exception):
    """Raised inside the loop when the loss stops being finite."""


def _batches(x, y, batch_size, shuffle, name='x'):
    """Yield ``(x, y, where)`` NumPy batches over arrays, reshuffled each time it is called;
    ``where`` says which examples of the arrays (called ``name``) the batch holds, for error
    messages."""
    count = len(x)
    order = random.generator().permutation(count) if shuffle else np.arange(count)
    for start in range(0, count, batch_size):
        stop = min(start + batch_size, count)
        if shuffle:
            index, where = order[start:stop], f'{stop - start} examples shuffled from {name}'
        else:
            index, where = slice(start, stop), f'examples {start}-{stop - 1} of {name}'
        yield x[index], None if y is None else y[index], where


def _is_iterator(x):
    return hasattr(x, '__next__') or (hasattr(x, '__iter__') and not hasattr(x, 'shape')
                                      and not isinstance(x, (list, tuple)))


class _Source:
    """Batches for one pass: from arrays (with batch_size) or from an iterable of batches
    (a generator, a directory iterator, a dataset), ``steps`` batches per pass.

    ``purpose`` ('fit', 'evaluate', 'predict', 'validation') names the call in errors;
    ``needs_y``: arrays must come with their targets.
    """

    def __init__(self, x, y=None, batch_size=32, steps=None, shuffle=False, purpose='fit',
                 needs_y=True):
        self.purpose = purpose
        arguments.count(purpose, 'batch_size', batch_size)
        if steps is not None:
            arguments.count(purpose, 'steps', steps)
        self.stream = _is_iterator(x)
        if self.stream:
            self.source, self.iterator, self.given = x, iter(x), 0
            self.steps = steps or (len(x) if hasattr(x, '__len__') else None)
            if self.steps is None:
                raise ValueError('steps_per_epoch (or steps) is needed when x is a generator '
                                 'without a length')
        else:
            self.x, self.y = _arrays(purpose, x, y, needs_y)
            self.steps = steps or math.ceil(len(self.x) / batch_size)
        self.batch_size, self.shuffle = batch_size, shuffle

    def epoch(self):
        """Yield ``(x, y, where)`` for each batch of one pass (``where``: see _batches)."""
        if not self.stream:
            name = 'the validation data' if self.purpose == 'validation' else 'x'
            yield from _batches(self.x, self.y, self.batch_size, self.shuffle, name)
            return
        for step in range(self.steps):
            batch = self._next(step)
            if isinstance(batch, (tuple, list)):
                yield batch[0], batch[1] if len(batch) > 1 else None, ''
            else:
                yield batch, None, ''

    def _next(self, step):
        """The next batch; a finite, re-iterable source starts over when it runs out, and a
        generator that runs out is an error saying how many batches it gave."""
        try:
            batch = next(self.iterator)
        except StopIteration:
            self.iterator = iter(self.source)
            batch = next(self.iterator, _END)
            if batch is _END:
                raise ValueError(f'{self.purpose}: the generator ran out after giving {step} '
                                 f'of the {self.steps} batches asked for this pass '
                                 f'({self.given} in all); lower steps_per_epoch (or steps), or '
                                 f'make the generator loop forever') from None
        self.given += 1
        return batch


_END = object()


def _arrays(purpose, x, y, needs_y):
    """``x`` and ``y`` as NumPy arrays holding the same, non-zero, number of examples."""
    if x is None:
        raise ValueError(f'{purpose}: x is None; give the input data')
    if y is None and needs_y:
        raise ValueError(f'{purpose}: y is None; give the targets, or x as a generator of '
                         f'(inputs, targets) batches')
    x, y = np.asarray(x), None if y is None else np.asarray(y)
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f'{purpose}: x holds no examples (shape {x.shape})')
    if y is not None and (y.ndim == 0 or len(y) != len(x)):
        raise ValueError(f'{purpose}: x has {len(x)} examples but y has '
                         f'{len(y) if y.ndim else "none (a scalar)"}')
    return x, y


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
        _check_batch(x, y, needs_y=True)
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
        arguments.count('fit', 'epochs', epochs, minimum=0)
        arguments.count('fit', 'initial_epoch', initial_epoch, minimum=0)
        arguments.fraction('fit', 'validation_split', validation_split)
        if device is not None:
            self.to(check_device(device))
        if validation_split and validation_data is None:
            if _is_iterator(x):
                raise ValueError('fit: validation_split needs arrays x and y; with a '
                                 'generator, pass validation_data instead')
            x, y, validation_data = _split(*_arrays('fit', x, y, True), validation_split)
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
        for batch, (xb, yb, where) in enumerate(source.epoch()):
            cbs.on_batch_begin(batch)
            logs = _in_batch(self.train_on_batch, xb, yb,
                             f'batch {batch + 1} of epoch {epoch + 1}', where)
            if not math.isfinite(logs['loss']):
                raise TrainingStopped(f'training stopped: the loss became {logs["loss"]} at '
                                      f'batch {batch + 1} of epoch {epoch + 1}; lower the '
                                      f'learning rate or check the inputs for NaN/inf')
            averages.add(logs, len(xb))
            cbs.on_batch_end(batch, averages.means())
        return averages.means()

    def _run_test(self, source, cbs=None):
        averages = _Averages()
        for batch, (xb, yb, where) in enumerate(source.epoch()):
            logs = _in_batch(self.test_on_batch, xb, yb, f'{source.purpose} batch {batch + 1}',
                             where)
            averages.add(logs, len(xb))
        return averages

    def evaluate(self, x=None, y=None, batch_size=32, verbose=1, steps=None):
        """``[loss, metric, ...]`` over the data (the loss alone when there are no metrics)."""
        self._check_compiled()
        means = self._run_test(_Source(x, y, batch_size, steps, purpose='evaluate')).means()
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
            for batch, (xb, _, where) in enumerate(
                    _Source(x, None, batch_size, steps, purpose='predict', needs_y=False).epoch()):
                outputs = _in_batch(self._predict_batch, xb, None, f'predict batch {batch + 1}',
                                    where)
                batches.append(outputs)
        outputs = [np.concatenate(parts) for parts in zip(*batches)]
        return outputs if len(outputs) > 1 else outputs[0]

    predict_generator = predict

    def _predict_batch(self, x, _):
        """The outputs of one batch, as a list of NumPy arrays."""
        _check_batch(x)
        x = Tensor(to_device(np.asarray(x, dtype=_input_dtype(x)), self.device))
        return [y.numpy() for y in as_list(self(x, training=False))]


def _in_batch(step, x, y, batch, where):
    """``step(x, y)``; a ValueError from inside says which batch (and examples) it came from."""
    try:
        return step(x, y)
    except ValueError as error:
        examples = f' ({where})' if where else ''
        raise ValueError(f'{batch}{examples}: {error}') from error


def _check_batch(x, y=None, needs_y=False):
    """A batch must hold at least one example, and its targets when the loss needs them."""
    if np.shape(x)[:1] in ((), (0,)):
        raise ValueError(f'the batch holds no examples (x of shape {np.shape(x)})')
    if needs_y and y is None:
        raise ValueError('the batch has no targets: a generator for fit or evaluate must give '
                         '(inputs, targets) pairs')


def _input_dtype(x):
    """Integer inputs (token ids) stay integers; everything else becomes float32."""
    return None if np.issubdtype(np.asarray(x).dtype, np.integer) else np.float32


def _split(x, y, fraction):
    """Keras's validation_split: the last ``fraction`` of the examples, taken before shuffling.
    Both parts must keep at least one example."""
    cut = int(len(x) * (1 - fraction))
    if not 0 < cut < len(x):
        raise ValueError(f'fit: validation_split={fraction} of {len(x)} examples leaves '
                         f'{cut} for training and {len(x) - cut} for validation; each needs '
                         f'at least one')
    return x[:cut], y[:cut], (x[cut:], y[cut:])


def _validation_source(data, batch_size, steps):
    if _is_iterator(data):
        return _Source(data, None, batch_size, steps, purpose='validation')
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise ValueError(f'fit: validation_data must be (x_val, y_val) or a generator, got '
                         f'{type(data).__name__}')
    return _Source(data[0], data[1], batch_size, steps, purpose='validation')
