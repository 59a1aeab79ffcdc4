"""``cupy.cuda.Stream``, ``get_current_stream`` and ``Event`` for the simulator: the order in
which device work completes, as far as the simulator has work that does not complete at once.

A simulated kernel runs to the end inside its launch, so on its own a stream would always be
idle. What stays in flight is the simulated NCCL's collectives (:mod:`.nccl`): each is queued on
the stream it was given as an object whose ``test()`` says whether it has finished. An
:class:`Event` recorded on a stream then waits for the work queued there before the record, as
a CUDA event does, and ``Event.done`` is how a caller polls it.

Limit: work queued after a collective does not wait for it, as it would on a GPU's stream (a
simulated kernel runs at its launch); read an all-reduce's buffer only once an event recorded
after it is done, which is what minidl does, and what is safe on a GPU as well.
"""
import itertools
import time
import weakref

_handles = itertools.count(1)
_by_pointer = weakref.WeakValueDictionary()  # Stream.ptr -> Stream, for the collectives' lookup


class Stream:
    """A simulated CUDA stream; ``ptr`` is its handle (0 for :attr:`Stream.null`)."""

    null = None  # the default stream, set below

    def __init__(self, null=False, **_cupy_only):
        self.ptr = 0 if null else next(_handles)
        self._queued = []
        _by_pointer[self.ptr] = self

    def enqueue(self, work):
        """Queue ``work`` (anything with a ``test()`` that is true once it has finished)."""
        self._queued.append(work)

    def pending(self):
        """The queued work that has not finished yet (finished work is dropped)."""
        self._queued = [work for work in self._queued if not work.test()]
        return list(self._queued)

    def __repr__(self):
        return f'<simulated cupy.cuda.Stream {self.ptr}>'


Stream.null = Stream(null=True)


def get_current_stream():
    """The stream that work goes to: :attr:`Stream.null`, as in CuPy when no other is in use
    (the simulator has no ``with stream:``)."""
    return Stream.null


def stream_at(pointer):
    """The Stream whose ``ptr`` is ``pointer``, as a library that takes a raw handle finds it."""
    try:
        return _by_pointer[pointer]
    except KeyError:
        raise ValueError(f'minidl CUDA simulator: {pointer!r} is not the handle of a live '
                         'cupy.cuda.Stream') from None


class Event:
    """A simulated CUDA event: a point in a stream. Before :meth:`record` it is done, as a CUDA
    event that was never recorded is."""

    def __init__(self, **_cupy_only):
        self._before = []

    def record(self, stream=None):
        """Mark the point in ``stream`` (default: the current one) that :attr:`done` waits
        for: the work queued there so far."""
        self._before = (stream or get_current_stream()).pending()

    @property
    def done(self):
        """True when the work before the record has finished."""
        self._before = [work for work in self._before if not work.test()]
        return not self._before

    def synchronize(self):
        """Wait until the work before the record has finished."""
        _wait_for(lambda: not self.done)


def _wait_for(unfinished):
    while unfinished():
        time.sleep(1e-4)
