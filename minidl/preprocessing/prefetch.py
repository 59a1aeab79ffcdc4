"""Prepare the next batches on background threads while the model trains on this one.

Decoding JPEGs and warping images happen in Pillow and in a Numba kernel, both of which release
the GIL, so a worker thread really runs beside the training step. A :class:`Prefetcher` keeps at
most ``depth`` batches ahead of the consumer (bounded memory) and hands them out in order, even
when several workers finish out of order.

Shutting down cleanly is the delicate part. The workers are daemon threads that hold the batch
source only through a weak reference, so:

* ``close()`` stops them and waits for them to end;
* dropping the last reference to the source (an iterator abandoned mid-epoch) stops them too,
  through a ``weakref.finalize`` hook, which also runs at interpreter exit;
* a daemon thread never keeps the program alive.
"""
import itertools
import threading
import weakref


class Prefetcher:
    """Compute ``produce(step)`` for ``step = start, start + 1, ...`` ahead of time, in order.

    produce: a bound method (held weakly: the prefetcher never keeps its owner alive).
    stop: first step not to produce (None: endless). depth: batches computed or in flight
    beyond the ones consumed. workers: threads. An exception raised by ``produce`` is re-raised
    by ``next()`` for the step that raised it.
    """

    def __init__(self, produce, start=0, stop=None, depth=2, workers=1):
        if depth < 1 or workers < 1:
            raise ValueError(f'prefetch depth and workers must be at least 1, got depth={depth}, '
                             f'workers={workers}')
        self._produce = weakref.WeakMethod(produce)
        self._claims = itertools.count(start)
        self._next, self._stop = start, stop
        self._ready = {}
        self._arrived = threading.Condition()
        self._slots = threading.Semaphore(depth)
        self._closed = threading.Event()
        self._threads = [threading.Thread(target=self._work, daemon=True,
                                          name=f'minidl-prefetch-{i}') for i in range(workers)]
        self._finalizer = weakref.finalize(produce.__self__, self._signal_stop)
        for thread in self._threads:
            thread.start()

    def __iter__(self):
        return self

    def __next__(self):
        """The batch for the next step, waiting for it if a worker is still on it."""
        if self._stop is not None and self._next >= self._stop:
            raise StopIteration
        with self._arrived:
            self._arrived.wait_for(lambda: self._next in self._ready or self._closed.is_set())
            if self._next not in self._ready:
                raise RuntimeError('this Prefetcher was closed; start a new one')
            batch, error = self._ready.pop(self._next)
        self._next += 1
        self._slots.release()
        if error is not None:
            raise error
        return batch

    def close(self):
        """Stop the workers and wait until every one has ended."""
        self._finalizer()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()

    def alive(self):
        """True while any worker thread is still running."""
        return any(thread.is_alive() for thread in self._threads)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _signal_stop(self):
        with self._arrived:
            self._closed.set()
            self._arrived.notify_all()
        for _ in self._threads:  # wake workers waiting for a free slot
            self._slots.release()

    def _work(self):
        while True:
            self._slots.acquire()
            if self._closed.is_set():
                return
            step = next(self._claims)
            produce = self._produce()
            if produce is None or (self._stop is not None and step >= self._stop):
                return
            try:
                item = (produce(step), None)
            except Exception as error:  # handed to the consumer, raised there
                item = (None, error)
            del produce  # the owner may be collected while this thread waits
            with self._arrived:
                self._ready[step] = item
                self._arrived.notify_all()
