"""Sequences of different lengths made one array: Keras's ``preprocessing.sequence`` module.

``pad_sequences([[1, 2, 3], [4]], maxlen=2)`` gives ``[[2, 3], [0, 4]]``: each sequence is cut
to ``maxlen`` steps and padded up to it, by default both at the front ('pre'), so the last
steps, the ones a model reading left to right sees last, are kept and aligned at the end.
"""
import numpy as np

_SIDES = ('pre', 'post')


def pad_sequences(sequences, maxlen=None, dtype='int32', padding='pre', truncating='pre',
                  value=0.0):
    """``(len(sequences), maxlen) + step_shape`` array of ``dtype``, as Keras makes it.

    ``sequences``: a list (anything with a length) of sequences of steps; a step is a number or
    an array of ``step_shape``, taken from the first non-empty sequence. ``maxlen`` defaults to
    the longest length. A longer sequence loses its first steps (``truncating='pre'``) or its
    last ('post'); a shorter one is filled with ``value`` before it (``padding='pre'``) or
    after it ('post'). Steps are cast to ``dtype`` (floats to 'int32' lose their fraction);
    a string ``value`` needs a string dtype or ``object``.
    """
    for name, side in (('padding', padding), ('truncating', truncating)):
        if side not in _SIDES:
            raise ValueError(f'pad_sequences: {name} must be "pre" or "post", got {side!r}')
    if not hasattr(sequences, '__len__'):
        raise ValueError(f'pad_sequences: `sequences` must be iterable with a length, got '
                         f'{type(sequences).__name__}')
    lengths, step_shape = [], None
    for i, sequence in enumerate(sequences):
        try:
            lengths.append(len(sequence))
        except TypeError:
            raise ValueError(f'pad_sequences: `sequences` must be a list of iterables; item '
                             f'{i} is {sequence!r}') from None
        if step_shape is None and lengths[-1]:
            step_shape = np.shape(sequence)[1:]
    if maxlen is None:
        if not lengths:
            raise ValueError('pad_sequences: cannot infer maxlen from an empty list of '
                             'sequences; pass maxlen')
        maxlen = max(lengths)
    if maxlen < 0:
        raise ValueError(f'pad_sequences: maxlen must be >= 0, got {maxlen}')
    kind = np.dtype(dtype).kind
    if isinstance(value, str) and kind not in 'OSU':
        raise ValueError(f'pad_sequences: dtype {dtype} cannot hold the string value '
                         f'{value!r}; use dtype=object for strings of any length')
    step_shape = step_shape or ()
    padded = np.full((len(lengths), maxlen) + step_shape, value, dtype=dtype)
    for i, (sequence, length) in enumerate(zip(sequences, lengths)):
        kept = min(length, maxlen)
        if not kept:
            continue
        steps = np.asarray(sequence[length - kept:] if truncating == 'pre' else
                           sequence[:kept], dtype=dtype)
        if steps.shape[1:] != step_shape:
            raise ValueError(f'pad_sequences: the steps of sequence {i} have shape '
                             f'{steps.shape[1:]}, those of the first non-empty sequence '
                             f'{step_shape}')
        if padding == 'pre':
            padded[i, maxlen - kept:] = steps
        else:
            padded[i, :kept] = steps
    return padded
