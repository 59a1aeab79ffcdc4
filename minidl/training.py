"""compile / fit / evaluate / predict: the Keras training loop, mixed into every Model.

One training step: forward with ``training=True``, loss, ``backward()``, one optimizer update of
the trainable weights.

A model with several inputs takes its arrays as a list in the order of ``model.inputs`` or as a
dict keyed by ``model.input_names``. A model with several outputs takes its targets, losses,
loss weights and metrics the same ways, by ``model.output_names`` (one loss or one list of
metrics serves every output). Each output that has a loss is a :class:`_Head`; training
minimises the weighted sum of their losses plus the regularizers' penalties (``model.losses``),
and the logs name the parts as tf-keras does: ``loss`` (that total), ``<output>_loss``,
``<output>_<metric>``, with ``val_`` twins (a single output logs ``loss`` and the metric
names alone). When an output's activation
matches its loss (softmax with a categorical cross-entropy, sigmoid with the binary one) that
loss is computed from the logits in its fused, stable form, and the metrics from the
probabilities.

Nothing runs on arguments or data that cannot train: batch sizes, epochs, steps and
``validation_split`` are checked before the first batch, and so are empty inputs, missing
targets, lists or dicts that do not match the inputs and outputs, and arrays of different
lengths. An error raised inside a batch (a label outside the classes, a target of the wrong
shape) is re-raised as a ValueError that starts with the batch and, for arrays, the examples it
held: ``batch 4 of epoch 1 (examples 192-255 of x): ...``. A generator that runs out before
``steps_per_epoch`` says how many batches it gave.
"""
import contextlib
import copy
import math
import numbers
import sys

import numpy as np

import minidl.functions as F
from minidl import callbacks as callbacks_module
from minidl import losses, metrics as metrics_module, optimizers, random
from minidl.autograd import Tensor, no_grad
from minidl.backends import check_device, to_device
from minidl.distributed.sharding import ArrayShard, StreamShard, Weightless
from minidl.layers import arguments
from minidl.utils import as_list


class TrainingStopped(Exception):
    """Raised inside the loop when the loss stops being finite."""


class _Head:
    """What one output adds to training: its loss, the weight of that loss in the total, its
    metrics as ``(name, fn)``, and the prefix of its log names (``'<output>_'`` when the
    model has several outputs, else ''). ``fused``: the output's activation is the one its
    loss pairs with, so the model hands this head logits."""

    def __init__(self, index, name, loss, weight, metrics, activation, prefix):
        if not isinstance(weight, numbers.Real) or isinstance(weight, bool):
            raise TypeError(f'compile: loss_weights for output {name!r} must be a number, '
                            f'got {weight!r}')
        self.index, self.name, self.loss, self.weight, self.prefix = \
            index, name, loss, float(weight), prefix
        self.metrics = [metrics_module.get(m) for m in metrics]
        self.fused = loss.fused_activation is not None and loss.fused_activation == activation

    def loss_and_scores(self, output, target):
        """The loss Tensor and the metric values (floats) of this output on one batch;
        ``output`` is the logits when fused. An error names the output when there are
        several."""
        try:
            if self.fused:
                loss = self.loss.on_logits(target, output)
                with no_grad():
                    predictions = F.bias_act(output.detach(), None,
                                             self.loss.fused_activation).data
            else:
                loss, predictions = self.loss(target, output), output.data
            return loss, [float(fn(target, predictions).mean()) for _, fn in self.metrics]
        except ValueError as error:
            if not self.prefix:
                raise
            raise ValueError(f'output {self.name!r}: {error}') from error


def _per_output(argument, spec, names, default=None):
    """``spec`` as one value per output: a dict by output name (names left out get
    ``default``), a list in output order, or one value for every output."""
    if isinstance(spec, dict):
        unknown = [key for key in spec if key not in names]
        if unknown:
            raise ValueError(f'compile: {argument} names {", ".join(map(repr, unknown))}, not '
                             f'among the outputs of the model ({", ".join(names)})')
        return [spec.get(name, default) for name in names]
    if isinstance(spec, (list, tuple)):
        if len(spec) != len(names):
            raise ValueError(f'compile: {argument} is a list of {len(spec)} for the '
                             f'{len(names)} output(s) {", ".join(names)}; give one per output '
                             f'or a dict by output name')
        return list(spec)
    return [default if spec is None else spec] * len(names)


def _metrics_per_output(metrics, names):
    """Metric names for each output: a flat list serves every output, as in Keras; a list of
    lists or a dict gives each output its own (a name or a list)."""
    if isinstance(metrics, (list, tuple)) and not any(
            isinstance(m, (list, tuple)) for m in metrics):
        return [list(metrics)] * len(names)
    return [[] if m is None else as_list(m) for m in _per_output('metrics', metrics, names)]


def _resolved_losses(loss):
    """Loss objects for compile's ``loss``, kept in the structure given (one, a list, a
    dict); None stays None (no loss for that output)."""
    def get(value):
        return None if value is None else losses.get(value)
    if isinstance(loss, dict):
        return {name: get(value) for name, value in loss.items()}
    if isinstance(loss, (list, tuple)):
        return [get(value) for value in loss]
    return get(loss)


def _labels(what, role, names):
    """How errors name the arrays of ``x`` or ``y``: 'x' for a single input, "x for input
    'a'" for each of several."""
    return [what] if len(names) == 1 else [f'{what} for {role} {name!r}' for name in names]


def _by_name(data, names, what, role, required):
    """``data`` as one entry per name in ``names`` (the model's inputs or outputs): one array
    for a single name, else a list in their order or a dict keyed by them. A dict may leave
    out names not in ``required`` (their entry is None)."""
    if isinstance(data, dict):
        unknown = [key for key in data if key not in names]
        if unknown:
            raise ValueError(f'{what} names {", ".join(map(repr, unknown))}, not among the '
                             f'{role}s of the model ({", ".join(map(str, names))})')
        missing = [name for name in required if name not in data]
        if missing:
            raise ValueError(f'{what} has no array for {role} {missing[0]!r}; it has '
                             f'{", ".join(map(repr, data)) or "none"}')
        return [data.get(name) for name in names]
    listed = isinstance(data, (list, tuple))
    if len(names) == 1:  # a list holding one array is that array; other lists are the data
        return [data[0] if listed and len(data) == 1 and hasattr(data[0], 'shape') else data]
    if not listed or len(data) != len(names):
        got = f'a list of {len(data)}' if listed else f'one array of shape {np.shape(data)}'
        raise ValueError(f'{what} must hold one array for each of the {len(names)} {role}s '
                         f'({", ".join(names)}), in a list in that order or a dict by name; '
                         f'got {got}')
    return list(data)


class _Arrays:
    """A data set or one batch as lists of NumPy arrays, ``xs`` one per model input and
    ``ys`` one per head (None without targets), all holding ``count`` examples.

    ``purpose`` ('fit', 'evaluate', ...) starts the errors about a whole data set; None
    marks a batch."""

    def __init__(self, xs, ys, x_labels, y_labels, purpose=None):
        self.xs = [np.asarray(x) for x in xs]
        self.ys = None if ys is None else [np.asarray(y) for y in ys]
        for x, label in zip(self.xs, x_labels):
            if x.ndim == 0 or len(x) == 0:
                raise ValueError(f'{purpose}: {label} holds no examples (shape {x.shape})'
                                 if purpose else
                                 f'the batch holds no examples ({label} of shape {x.shape})')
        self.count = len(self.xs[0])
        labels = x_labels + (y_labels if ys is not None else [])
        for array, label in zip(self.xs[1:] + (self.ys or []), labels[1:]):
            if array.ndim == 0 or len(array) != self.count:
                prefix = f'{purpose}: ' if purpose else ''
                raise ValueError(f'{prefix}{labels[0]} has {self.count} examples but {label} '
                                 f'has {len(array) if array.ndim else "none (a scalar)"}')

    def subset(self, index):
        """The examples at ``index`` (a slice or an index array)."""
        part = copy.copy(self)
        part.xs = [x[index] for x in self.xs]
        part.ys = None if self.ys is None else [y[index] for y in self.ys]
        part.count = len(part.xs[0])
        return part

    def split(self, fraction):
        """Keras's validation_split: ``(training, validation)``, the validation part being the
        last ``fraction`` of the examples, taken before shuffling. Each part must keep at
        least one example."""
        cut = int(self.count * (1 - fraction))
        if not 0 < cut < self.count:
            raise ValueError(f'fit: validation_split={fraction} of {self.count} examples '
                             f'leaves {cut} for training and {self.count - cut} for '
                             f'validation; each needs at least one')
        return self.subset(slice(0, cut)), self.subset(slice(cut, None))

    def batches(self, batch_size, shuffle, name):
        """Yield ``(batch, where)``, the batches as _Arrays, reshuffled each time it is
        called; ``where`` says which examples of the data (called ``name``) the batch holds,
        for errors."""
        order = random.generator().permutation(self.count) if shuffle else None
        for start in range(0, self.count, batch_size):
            stop = min(start + batch_size, self.count)
            if shuffle:
                index, where = order[start:stop], f'{stop - start} examples shuffled from {name}'
            else:
                index, where = slice(start, stop), f'examples {start}-{stop - 1} of {name}'
            yield self.subset(index), where


def _is_iterator(x):
    return hasattr(x, '__next__') or (hasattr(x, '__iter__') and not hasattr(x, 'shape')
                                      and not isinstance(x, (list, tuple, dict)))


class _Source:
    """Batches for one pass: from an :class:`_Arrays` (with batch_size) or from an iterable of
    batches (a generator, a directory iterator, a dataset), ``steps`` batches per pass.

    ``purpose`` ('fit', 'evaluate', 'predict', 'validation') names the call in errors.
    """

    def __init__(self, data, batch_size=32, steps=None, shuffle=False, purpose='fit'):
        self.purpose = purpose
        arguments.count(purpose, 'batch_size', batch_size)
        if steps is not None:
            arguments.count(purpose, 'steps', steps)
        self.given_steps = steps
        self.stream = not isinstance(data, _Arrays)
        if self.stream:
            self.source, self.iterator, self.given = data, iter(data), 0
            self.steps = steps or (len(data) if hasattr(data, '__len__') else None)
            if self.steps is None:
                raise ValueError('steps_per_epoch (or steps) is needed when x is a generator '
                                 'without a length')
        else:
            self.data = data
            self.steps = steps or math.ceil(data.count / batch_size)
        self.batch_size, self.shuffle = batch_size, shuffle

    def epoch(self):
        """Yield ``(x, y, where)`` for each batch of one pass: ``x`` an _Arrays holding the
        targets too and ``y`` None when cut from arrays, else as the generator gave them
        (``where``: see :meth:`_Arrays.batches`)."""
        if not self.stream:
            name = 'the validation data' if self.purpose == 'validation' else 'x'
            for batch, where in self.data.batches(self.batch_size, self.shuffle, name):
                yield batch, None, where
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


def _results(logs, return_dict):
    """What Keras's evaluate and *_on_batch return: the logs as a dict, or their values as a
    list (the loss alone when there is nothing else)."""
    if return_dict:
        return logs
    values = list(logs.values())
    return values if len(values) > 1 else values[0]


class Trainer:
    """The training API of :class:`minidl.models.Model`."""

    optimizer = loss = None
    loss_weights = None
    compiled_metric_names = ()
    stop_training = False
    _head_cache = None

    def compile(self, optimizer='rmsprop', loss=None, metrics=None, loss_weights=None):
        """Choose the optimizer, the loss and the metrics (names or objects, as in Keras).

        For several outputs, ``loss`` is one loss for all, a list in output order or a dict
        by output name (an output left out has no loss); ``loss_weights`` a list or a dict
        (1 where not given); ``metrics`` a list for every output, or a list of lists or a
        dict giving each output its own."""
        self.optimizer = optimizers.get(optimizer)
        self.loss, self.loss_weights = _resolved_losses(loss), loss_weights
        self.compiled_metric_names = [] if metrics is None else metrics if isinstance(
            metrics, dict) else as_list(metrics)
        self._head_cache = None
        if loss is not None and self.output_names and not self._heads():
            raise ValueError(f'compile: loss={loss!r} gives no output of {self.name} a loss')

    def _heads(self):
        """The heads for the compiled settings and the model's current outputs (made again
        when those change, as when a layer is added to a Sequential)."""
        ends = (tuple(self.output_names), tuple(self.output_activations))
        if self._head_cache is None or self._head_cache[0] != ends:
            self._head_cache = ends, self._make_heads(*ends)
        return self._head_cache[1]

    def _make_heads(self, names, activations):
        names = list(names)
        specs = zip(range(len(names)), names, _per_output('loss', self.loss, names),
                    _per_output('loss_weights', self.loss_weights, names, default=1.0),
                    _metrics_per_output(self.compiled_metric_names, names), activations)
        return [_Head(index, name, loss, weight, metrics, activation,
                      f'{name}_' if len(names) > 1 else '')
                for index, name, loss, weight, metrics, activation in specs
                if loss is not None]

    @property
    def metrics(self):
        """The compiled metrics as ``(log name, fn)``, output by output."""
        return [(head.prefix + key, fn) for head in self._heads() for key, fn in head.metrics]

    @property
    def metrics_names(self):
        """The names of the logs in the order ``evaluate`` returns them: ``loss``, each
        output's loss when there are several, then the metrics output by output."""
        heads = self._heads()
        return ['loss'] + [head.prefix + 'loss' for head in heads if head.prefix] + [
            key for key, _ in self.metrics]

    def _check_compiled(self):
        if self.loss is None or not self._heads():
            raise RuntimeError(f'{self.name}: call compile(optimizer, loss, metrics) before '
                               f'fit or evaluate')

    # --- data -------------------------------------------------------------------------------
    def _data(self, x, y, purpose=None, needs_y=True):
        """``x`` and ``y`` as the model takes them (an array, or a list or a dict by name for
        several inputs or outputs) as an :class:`_Arrays`, the targets one per head.
        ``purpose`` names the call for a whole data set; None marks a batch."""
        if x is None and purpose:
            raise ValueError(f'{purpose}: x is None; give the input data')
        if y is None and needs_y:
            raise ValueError(f'{purpose}: y is None; give the targets, or x as a generator of '
                             f'(inputs, targets) batches' if purpose else
                             'the batch has no targets: a generator for fit or evaluate must '
                             'give (inputs, targets) pairs')
        prefix = f'{purpose}: ' if purpose else ''
        names = self.input_names if self.built else [None]
        heads = [] if y is None else self._heads()
        try:
            xs = _by_name(x, names, 'x', 'input', names)
            ys = None if y is None else _by_name(y, self.output_names, 'y', 'output',
                                                 [head.name for head in heads])
        except ValueError as error:
            raise ValueError(f'{prefix}{error}') from None
        y_labels = _labels('y', 'output', self.output_names)
        return _Arrays(xs, None if y is None else [ys[head.index] for head in heads],
                       _labels('x', 'input', names), [y_labels[head.index] for head in heads],
                       purpose)

    def _source(self, purpose, x, y, batch_size=32, steps=None, shuffle=False, needs_y=True):
        """The batches of one pass over ``x``: a generator's, or those of the arrays."""
        if not (_is_iterator(x) or isinstance(x, _Arrays)):
            x = self._data(x, y, purpose, needs_y)
        return _Source(x, batch_size, steps, shuffle, purpose)

    def _validation_source(self, data, batch_size, steps):
        if not (_is_iterator(data) or isinstance(data, _Arrays)):
            if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
                raise ValueError(f'fit: validation_data must be (x_val, y_val) or a generator, '
                                 f'got {type(data).__name__}')
            data = self._data(data[0], data[1], 'validation')
        return _Source(data, batch_size, steps, purpose='validation')

    # --- one batch --------------------------------------------------------------------------
    def _batch_data(self, x, y, needs_y=True):
        """A batch as an _Arrays: as an array source cut it, or made from what a generator
        (or a call of ``train_on_batch``) gave."""
        return x if isinstance(x, _Arrays) else self._data(x, y, needs_y=needs_y)

    def _forward(self, xs, training, logits=()):
        """The model's outputs (a list of Tensors) on the input arrays ``xs``; the outputs at
        positions ``logits`` stop before their final activation."""
        if not self.built:
            self.build((None,) + np.shape(xs[0])[1:])
        inputs = [Tensor(to_device(np.asarray(x, dtype=_input_dtype(x, symbolic.dtype)),
                                   self.device)) for x, symbolic in zip(xs, self.inputs)]
        prepared = self._prepare(inputs if len(inputs) > 1 else inputs[0])
        return as_list(self.call(prepared, training, logits))

    def _batch(self, x, y, training):
        """One batch forward: the weighted total loss (a Tensor), the logs (named as
        :attr:`metrics_names`) and the number of examples."""
        heads = self._heads()
        data = self._batch_data(x, y)
        outputs = self._forward(data.xs, training, {head.index for head in heads if head.fused})
        parts, scores = [], []
        for head, target in zip(heads, data.ys):
            loss, values = head.loss_and_scores(outputs[head.index],
                                                to_device(target, self.device))
            parts.append(loss)
            scores += values
        weighted = [loss if head.weight == 1 else head.weight * loss
                    for head, loss in zip(heads, parts)]
        total = sum(weighted[1:], weighted[0])
        total = sum(self.losses, total)  # the regularizers' penalties, in ``loss`` as in Keras
        named = [loss for head, loss in zip(heads, parts) if head.prefix]
        values = [float(loss.item()) for loss in [total] + named] + scores
        return total, dict(zip(self.metrics_names, values)), data.count

    def _train_batch(self, x, y, parallel=None):
        """One optimizer step; with ``parallel`` (a distributed fit) the gradients and logs
        are first averaged over every rank's batch, and ``x`` may be a Weightless batch."""
        weight = 1.0
        if isinstance(x, Weightless):
            x, y, weight = x.x, x.y, 0.0
        if parallel is not None:
            parallel.weight = weight  # what a synchronized BatchNormalization weights it by
        total, logs, count = self._batch(x, y, training=True)
        weights = self.trainable_weights
        for w in weights:
            w.grad = None
        total.backward()
        if parallel is not None:
            logs, count = parallel.average(weights, logs, count)  # weighted by .weight
        self.optimizer.step(weights)
        return logs, count

    def _test_batch(self, x, y):
        with no_grad():
            _, logs, count = self._batch(x, y, training=False)
        return logs, count

    def train_on_batch(self, x, y, return_dict=False):
        """One optimizer step on one batch; returns its loss and metrics as ``evaluate``
        does."""
        self._check_compiled()
        return _results(self._train_batch(x, y)[0], return_dict)

    def test_on_batch(self, x, y, return_dict=False):
        """The loss and metrics of one batch, as ``evaluate`` returns them."""
        self._check_compiled()
        return _results(self._test_batch(x, y)[0], return_dict)

    # --- whole passes -----------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=32, epochs=1, verbose=1, callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, device=None, distributed=False):
        """Train for ``epochs``; returns a History whose ``.history`` maps each log name
        (see :attr:`metrics_names`, and their 'val_' twins) to per-epoch values.

        ``distributed=True``: train on every process of an MPI job at once, each on its own
        part of the data (every process passes all of it; ``batch_size`` is each one's); see
        :mod:`minidl.distributed`."""
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
            x, validation_data = self._data(x, y, 'fit').split(validation_split)
        source = self._source('fit', x, y, batch_size, steps_per_epoch, shuffle)
        validation = None if validation_data is None else self._validation_source(
            validation_data, batch_size, validation_steps)
        parallel = self._data_parallel() if distributed else None
        if parallel is not None:
            source = _shard(source, parallel, training=True)
            if validation is not None:
                validation = _shard(validation, parallel, training=False)
            parallel.synchronize(source, batch_size)
            callbacks = parallel.callbacks(callbacks)
        cbs = callbacks_module.CallbackList(
            callbacks, model=self, add_history=True,
            add_progbar=verbose > 0 and (parallel is None or parallel.is_main),
            params={'epochs': epochs, 'steps': source.steps, 'verbose': verbose})
        with _running(parallel):
            return self._fit_loop(source, validation, parallel, epochs, initial_epoch, cbs)

    fit_generator = fit

    def _fit_loop(self, source, validation, parallel, epochs, initial_epoch, cbs):
        self.stop_training = False
        cbs.on_train_begin()
        try:
            for epoch in range(initial_epoch, epochs):
                cbs.on_epoch_begin(epoch)
                logs = self._train_epoch(source, cbs, epoch, parallel)
                if validation is not None:
                    logs.update(self._run_test(validation, parallel).means('val_'))
                cbs.on_epoch_end(epoch, logs)
                if parallel is not None:
                    self.stop_training = parallel.stop(self.stop_training)
                if self.stop_training:
                    break
        except TrainingStopped as stop:
            print(f'minidl: {stop}', file=sys.stderr)
        cbs.on_train_end()
        return cbs.history

    def _data_parallel(self):
        """The model's DataParallel, made on the first distributed fit or evaluate."""
        from minidl import distributed
        if getattr(self, '_parallel', None) is None:
            self._parallel = distributed.DataParallel(self, distributed.communicator())
        return self._parallel

    def _train_epoch(self, source, cbs, epoch, parallel=None):
        averages = _Averages()
        for batch, (xb, yb, where) in enumerate(source.epoch()):
            cbs.on_batch_begin(batch)
            logs, count = _in_batch(self._train_batch, xb, yb,
                                    f'batch {batch + 1} of epoch {epoch + 1}', where, parallel)
            if not math.isfinite(logs['loss']):
                raise TrainingStopped(f'training stopped: the loss became {logs["loss"]} at '
                                      f'batch {batch + 1} of epoch {epoch + 1}; lower the '
                                      f'learning rate or check the inputs for NaN/inf')
            averages.add(logs, count)
            cbs.on_batch_end(batch, averages.means())
        return averages.means()

    def _run_test(self, source, parallel=None):
        averages = _Averages()
        for batch, (xb, yb, where) in enumerate(source.epoch()):
            averages.add(*_in_batch(self._test_batch, xb, yb,
                                    f'{source.purpose} batch {batch + 1}', where))
        return averages if parallel is None else parallel.reduce(averages, self.metrics_names)

    def evaluate(self, x=None, y=None, batch_size=32, verbose=1, steps=None, return_dict=False,
                 distributed=False):
        """The loss and the metrics over the data, in the order of :attr:`metrics_names`
        (the loss alone when there is nothing else; a dict with ``return_dict``).

        ``distributed=True``: every process of an MPI job evaluates rank 0's model on its own
        part of the data (each passes all of it) and all get the totals."""
        self._check_compiled()
        source = self._source('evaluate', x, y, batch_size, steps)
        parallel = self._data_parallel() if distributed else None
        if parallel is not None:
            source = _shard(source, parallel, training=False)
            parallel.synchronize(source, batch_size)
        with _running(parallel):
            means = self._run_test(source, parallel).means()
            if verbose:
                print(' - '.join(f'{k}: {v:.4f}' for k, v in means.items()))
        return _results(means, return_dict)

    evaluate_generator = evaluate

    def predict(self, x, batch_size=32, verbose=0, steps=None):
        """The model's outputs as a NumPy array (a list of arrays for a model with several
        outputs, such as the lessons' activation model), computed batch by batch without a
        graph."""
        batches = []
        source = self._source('predict', x, None, batch_size, steps, needs_y=False)
        with no_grad():
            for batch, (xb, _, where) in enumerate(source.epoch()):
                batches.append(_in_batch(self._predict_batch, xb, None,
                                         f'predict batch {batch + 1}', where))
        outputs = [np.concatenate(parts) for parts in zip(*batches)]
        return outputs if len(outputs) > 1 else outputs[0]

    predict_generator = predict

    def _predict_batch(self, x, _):
        """The outputs of one batch, as a list of NumPy arrays."""
        return [y.numpy() for y in self._forward(self._batch_data(x, None, False).xs, False)]


def _in_batch(step, x, y, batch, where, *extra):
    """``step(x, y, *extra)``; a ValueError from inside says which batch (and examples) it
    came from."""
    try:
        return step(x, y, *extra)
    except ValueError as error:
        examples = f' ({where})' if where else ''
        raise ValueError(f'{batch}{examples}: {error}') from error


def _running(parallel):
    """What a distributed fit or evaluate runs inside (see ``DataParallel.running``)."""
    return contextlib.nullcontext() if parallel is None else parallel.running()


def _shard(source, parallel, training):
    """This rank's part of a _Source's batches (see :mod:`minidl.distributed.sharding`)."""
    if source.stream:
        return StreamShard(source.source, source.given_steps if training else source.steps,
                           parallel.comm, training, source.purpose)
    return ArrayShard(source.data, source.batch_size, source.shuffle and training, parallel.comm,
                      training, source.purpose)


def _input_dtype(x, declared):
    """Integer inputs (token ids) stay integers; everything else takes the float dtype its
    Input declares (float32 unless given, as ``Input(shape, dtype='float64')``)."""
    if np.issubdtype(np.asarray(x).dtype, np.integer):
        return None
    return declared if np.issubdtype(declared, np.floating) else np.float32
