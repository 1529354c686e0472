"""Overlapping decode -> compute -> write for ``pixelwise predict`` on many files.

One thread decodes the next images while the network runs (:class:`Prefetcher`), one writes the
finished ones' PNGs and overlays (:class:`Writer`: two encoding threads, results
recorded in order); both queues are bounded, so at most a few
decoded images wait in memory.  Image decoding and PNG/JPEG encoding release the GIL (PIL, zlib),
so the three stages really overlap even on one core's worth of threads.  Order is kept: images
are decoded, predicted and written in input order, so log lines and records come out as before.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_END = object()


class Prefetcher:
    """Iterates ``(item, result_or_exception, seconds)`` for ``decode(item)`` over ``items``,
    decoding up to ``depth`` items ahead in a background thread."""

    def __init__(self, items: Iterable[Any], decode: Callable[[Any], Any], depth: int = 4) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(list(items), decode), daemon=True, name="pixelwise-decode"
        )
        self._thread.start()

    def _put(self, x: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, items: list, decode: Callable[[Any], Any]) -> None:
        for item in items:
            t0 = time.perf_counter()
            try:
                result: Any = decode(item)
            except Exception as e:  # noqa: BLE001 -- handed to the consumer, which decides (--skip-bad or stop)
                result = e
            if not self._put((item, result, time.perf_counter() - t0)):
                return
        self._put(_END)

    def __iter__(self) -> Iterator[tuple[Any, Any, float]]:
        while True:
            x = self._q.get()
            if x is _END:
                return
            yield x

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class Writer:
    """Runs ``job()`` callables on ``workers`` threads and ``finish(result)`` for each in submission
    order on one more; the first exception stops it (jobs not yet started are dropped) and is
    raised in the caller by :meth:`submit` or :meth:`close`.

    Why a pool: encoding a label PNG and a JPEG overlay costs more than the network's forward on
    the fastest backend (a CamVid frame: ~25 vs ~30 ms), and fsync waits on the disk; two encoders
    keep the writing off the critical path while ``finish`` (records, log lines) stays in order.
    """

    def __init__(self, depth: int = 4, workers: int = 2) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="pixelwise-write")
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="pixelwise-write-order")
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _END:
                return
            future, finish = item
            if self.error is not None:  # after a failure the rest is discarded, not written
                future.cancel()
                continue
            try:
                result = future.result()
                if finish is not None:
                    finish(result)
            except BaseException as e:  # noqa: BLE001 -- re-raised in the caller's thread
                self.error = e

    def submit(self, job: Callable[[], Any], finish: Callable[[Any], None] | None = None) -> None:
        self._raise()
        self._q.put((self._pool.submit(self._guarded, job), finish))

    def _guarded(self, job: Callable[[], Any]) -> Any:
        if self.error is not None:
            raise self.error
        return job()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def close(self, *, discard: bool = False) -> None:
        """Wait for the queued jobs (``discard``: drop those not started: interrupted runs)."""
        if discard:
            self.error = self.error or KeyboardInterrupt()
        self._q.put(_END)
        self._thread.join()
        self._pool.shutdown(wait=True, cancel_futures=discard)
        if not discard:
            self._raise()


def same_size_runs(
    items: Iterable[tuple[Any, Any, float]], size: Callable[[Any], tuple | None], batch_size: int
) -> Iterator[list[tuple[Any, Any, float]]]:
    """Group consecutive decoded items into batches of up to ``batch_size`` with equal
    ``size(result)``; an item whose ``size`` is None (an error, an image needing windows) goes alone."""
    run: list = []
    for x in items:
        key = size(x[1])
        if run and (key is None or key != size(run[0][1]) or len(run) >= batch_size):
            yield run
            run = []
        if key is None:
            yield [x]
        else:
            run.append(x)
    if run:
        yield run
