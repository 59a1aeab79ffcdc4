"""Integer indices into a table, checked before any kernel uses them.

Class labels (the sparse cross-entropy, the sparse accuracies) and embedding ids index rows or
columns of an array. A kernel trusts them: an out-of-range label would make the Numba or CUDA
softmax-cross-entropy read another example's row, and a negative one would wrap around. So
every such path converts its indices here, once per batch, with one vectorised check: the
values must be numbers, whole, and in ``0 .. count - 1``. Whatever the backend, a bad index is
a ValueError naming the value, where it sits in the batch, and the valid range.
"""
import numpy as np

from minidl.backends import get_array_module


def checked_indices(values, count, op, what='label', limit='classes'):
    """``values`` (any shape) as int64 after checking each is a whole number in [0, count).

    ``op`` names the caller in the message; ``what`` and ``limit`` name the indices and their
    range ('label' of 'classes', 'id' of 'rows (input_dim)').
    """
    xp = get_array_module(values)
    if values.dtype.kind not in 'biuf':
        raise ValueError(f'{op}: {what}s must be integers, got an array of dtype {values.dtype}'
                         f' (map names to indices 0..{count - 1} first)')
    if values.size == 0:
        return values.astype(xp.int64)
    if values.dtype.kind == 'f':
        _refuse(values, ~(values == xp.floor(values)), op,  # NaN and inf fail the comparison
                f'is not a whole number; {what}s are integers 0..{count - 1}', what)
    if values.min() < 0 or values.max() >= count:
        _refuse(values, (values < 0) | (values >= count), op,
                f'is out of range for {count} {limit}; valid {what}s are 0..{count - 1}', what)
    return values.astype(xp.int64)


def _refuse(values, bad, op, problem, what):
    """Raise for the first ``values`` entry flagged in ``bad``, when any is."""
    if not bad.any():
        return
    flat = int(bad.reshape(-1).argmax())
    position = tuple(int(i) for i in np.unravel_index(flat, values.shape))
    value = values.reshape(-1)[flat].item()
    where = position[0] if len(position) == 1 else position
    raise ValueError(f'{op}: {what} {value!r} at index {where} of the batch {problem}')
