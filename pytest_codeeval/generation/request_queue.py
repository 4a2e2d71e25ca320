"""A continuously refilled request queue: ``concurrency`` jobs in flight whenever work remains.

A batch barrier (start N requests, wait for all N, start the next N) leaves a serving engine
with continuous batching (vLLM, TGI, ``transformers serve --continuous-batching``) under-fed:
each batch ends with its slowest answer while the other slots sit idle, and nothing is sent
while the caller judges the previous item. Here a job starts the moment another ends, across
batches and items: the caller submits everything it will need (the look-ahead window) and
waits only for the keys it needs now, which jump the queue.

* ``work(key)`` runs on a worker thread (one request per job: retries and timeouts are the
  work's, e.g. the ``openai`` client's); ``deliver(key, result)`` is called with each answer on
  the worker that got it, one at a time, so it can persist it at once (crash-safe caching).
* The first exception a job raises is the queue's failure: no further job starts, those in
  flight still finish (and are delivered), and :meth:`RequestQueue.wait` raises it for keys it
  left unanswered.
* Daemon threads, started on demand and ended when nothing is left to start, not a
  ``ThreadPoolExecutor``: the interpreter joins an executor's threads at exit, so a Ctrl-C
  would wait for every request in flight.

Generic over the key and the result; knows nothing of HTTP, models or pytest.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)

POLL_SECONDS = 0.2  # how often a waiting caller wakes (Ctrl-C, its tick) when nothing arrives


class RequestQueue(Generic[K]):
    """Runs ``work(key)`` for every submitted key, ``concurrency`` at a time, refilling a slot
    as soon as it frees; each key runs once per queue."""

    def __init__(self, work: Callable[[K], Any], concurrency: int,
                 deliver: Callable[[K, Any], None] | None = None, name: str = "codeeval-request") -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self._work = work
        self._deliver = deliver or (lambda key, result: None)
        self.concurrency = concurrency
        self._name = name
        self._cond = threading.Condition()
        self._delivering = threading.Lock()  # deliver() one answer at a time
        self._pending: OrderedDict[K, None] = OrderedDict()  # submitted, not started, in start order
        self._running: set[K] = set()
        self._done: set[K] = set()  # answered (deliver has returned)
        self._failed: dict[K, BaseException] = {}
        self.failure: BaseException | None = None  # the first job's exception: nothing starts after it
        self._stopped = False
        self._threads = 0
        self._answers = 0
        # occupancy: time with at least one job in flight, and the integral of jobs in flight
        self._busy_since: float | None = None
        self._busy = 0.0
        self._slot_seconds = 0.0
        self._changed = time.perf_counter()
        self.peak = 0  # most jobs in flight at once

    # -- the caller's side ----------------------------------------------------------------------
    def submit(self, keys: Iterable[K], first: bool = False) -> None:
        """Queue the keys not yet submitted, at the back in the order given (``first``: at the
        front, ahead of everything waiting, keys already waiting included). Keys running or
        answered are not run again."""
        with self._cond:
            fresh = [k for k in dict.fromkeys(keys) if k not in self._running and k not in self._done
                     and k not in self._failed]
            for k in fresh:
                self._pending[k] = None
            if first:
                for k in reversed(fresh):
                    self._pending.move_to_end(k, last=False)
            self._spawn()

    def wait(self, keys: Iterable[K], tick: Callable[[], None] | None = None) -> None:
        """Block until every key (submitted first, at the front, if it was not) is answered.
        Raises the exception of a key that failed, or the queue's failure when a key will never
        run, once the jobs in flight have ended. ``tick()`` is called on this thread whenever
        answers arrived (a progress display)."""
        wanted = list(dict.fromkeys(keys))
        self.submit(wanted, first=True)
        seen = self._answers
        while True:
            with self._cond:
                left = [k for k in wanted if k not in self._done]
                failed = next((self._failed[k] for k in left if k in self._failed), None)
                settled = not self._running
                if not left:
                    return
                if failed is not None and settled:
                    raise failed
                if self.failure is not None and settled:
                    raise self.failure
                if self._stopped and settled:
                    raise RuntimeError(f"the request queue was stopped before {left[0]!r} was answered")
                if self._answers == seen:
                    self._cond.wait(POLL_SECONDS)
                arrived, seen = self._answers != seen, self._answers
            if arrived and tick is not None:
                tick()

    def stop(self) -> None:
        """Start no further job (the waiting ones are dropped); those in flight still answer."""
        with self._cond:
            self._stopped = True
            self._pending.clear()
            self._cond.notify_all()

    def done(self, key: K) -> bool:
        with self._cond:
            return key in self._done

    @property
    def in_flight(self) -> int:
        with self._cond:
            return len(self._running)

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._pending)

    def queued(self) -> list[K]:
        """The keys waiting to start, in the order they will."""
        with self._cond:
            return list(self._pending)

    def busy_seconds(self) -> float:
        """Seconds during which at least one job was in flight (the current stretch included)."""
        with self._cond:
            since = self._busy_since
            return self._busy + (time.perf_counter() - since if since is not None else 0.0)

    def occupancy(self) -> float:
        """Mean share of the ``concurrency`` slots in use while busy (1.0: always full)."""
        with self._cond:
            now = time.perf_counter()
            slots = self._slot_seconds + len(self._running) * (now - self._changed)
            busy = self._busy + (now - self._busy_since if self._busy_since is not None else 0.0)
            return slots / (busy * self.concurrency) if busy else 0.0

    # -- the workers' side (under self._cond) ------------------------------------------------
    def _spawn(self) -> None:
        """Start threads until every slot with a job to take has one."""
        while not self._stopped and self.failure is None and self._threads < min(
                self.concurrency, len(self._running) + len(self._pending)):
            self._threads += 1
            threading.Thread(target=self._serve, name=f"{self._name}-{self._threads}", daemon=True).start()

    def _account(self, change: int) -> None:
        now = time.perf_counter()
        self._slot_seconds += len(self._running) * (now - self._changed)
        self._changed = now
        if change > 0 and not self._running:
            self._busy_since = now
        elif change < 0 and len(self._running) == 1 and self._busy_since is not None:
            self._busy += now - self._busy_since
            self._busy_since = None

    def _take(self) -> K | None:
        with self._cond:
            if self._stopped or self.failure is not None or not self._pending:
                self._threads -= 1
                return None
            key, _ = self._pending.popitem(last=False)
            self._account(+1)
            self._running.add(key)
            self.peak = max(self.peak, len(self._running))
            return key

    def _serve(self) -> None:
        while (key := self._take()) is not None:
            try:
                result: Any = self._work(key)
                error: BaseException | None = None
            except BaseException as e:  # handed to the waiting caller, who decides
                result, error = None, e
            if error is None:
                try:
                    with self._delivering:
                        self._deliver(key, result)
                except BaseException as e:  # a failed write (disk full) is a failure too
                    error = e
            with self._cond:
                self._account(-1)
                self._running.discard(key)
                if error is None:
                    self._done.add(key)
                else:
                    self._failed[key] = error
                    if self.failure is None:
                        self.failure = error
                self._answers += 1
                self._cond.notify_all()
