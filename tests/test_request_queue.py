"""generation/request_queue.py: the continuously refilled request queue, on its own.

Jobs here block on events the test sets, so what is in flight at each step is decided by the
test, not by timing; the waits are bounded only so that a broken queue fails instead of hanging.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_codeeval.generation.request_queue import RequestQueue

BOUND = 30.0  # seconds: a broken queue fails the test instead of hanging it


class Held:
    """A job function whose calls block until the test releases them, recording who ran when."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.running: list[Any] = []
        self.started: list[Any] = []
        self.released: set[Any] = set()
        self.seen_in_flight: list[int] = []  # jobs in flight when each one started (itself included)
        self.threads: set[str] = set()
        self.fail: set[Any] = set()

    def __call__(self, key: Any) -> str:
        with self.cond:
            self.running.append(key)
            self.started.append(key)
            self.seen_in_flight.append(len(self.running))
            self.cond.notify_all()
            assert self.cond.wait_for(lambda: key in self.released, BOUND)
            self.running.remove(key)
            self.cond.notify_all()
        if key in self.fail:
            raise RuntimeError(f"job {key} failed")
        return f"answer {key}"

    def when(self, predicate: Any) -> None:
        with self.cond:
            assert self.cond.wait_for(predicate, BOUND), (self.running, self.started)

    def release(self, key: Any) -> None:
        with self.cond:
            self.released.add(key)
            self.cond.notify_all()


@pytest.fixture
def held() -> Iterator[Held]:
    h = Held()
    yield h
    with h.cond:  # let any thread still held end
        h.released.update(h.started)
        h.cond.notify_all()


def test_a_slot_is_refilled_the_moment_a_job_ends_not_when_its_batch_does(held: Held) -> None:
    delivered: list[tuple[Any, Any, str]] = []
    q = RequestQueue(held, 3, lambda k, r: delivered.append((k, r, threading.current_thread().name)))
    q.submit(range(10))
    held.when(lambda: len(held.running) == 3)
    # release the jobs one at a time, oldest first: a barrier would start nothing until all
    # three of a batch ended; here each end lets the next job start while work remains
    for k in range(10):
        held.release(k)
        remaining = 10 - (k + 1)
        held.when(lambda: len(held.running) == min(3, remaining) and k not in held.running)
    q.wait(range(10))
    assert held.started == list(range(10))  # in the order submitted
    assert held.seen_in_flight == [1, 2, 3] + [3] * 7  # full from the third job on
    assert q.peak == 3 and q.in_flight == 0 and q.waiting == 0
    assert sorted((k, r) for k, r, _ in delivered) == [(k, f"answer {k}") for k in range(10)]
    assert all(name.startswith("codeeval-request") for _, _, name in delivered)  # on the workers


def test_the_keys_waited_for_jump_the_queue(held: Held) -> None:
    q = RequestQueue(held, 1)
    q.submit(["a", "b", "c", "d", "e"])
    held.when(lambda: held.running == ["a"])
    waiter = threading.Thread(target=q.wait, args=(["e", "d"],))
    waiter.start()
    held.when(lambda: q.queued() == ["e", "d", "b", "c"])
    for k in ["a", "e", "d", "b", "c"]:
        held.when(lambda: held.running == [k])
        held.release(k)
    waiter.join(BOUND)
    q.wait("abcde")
    assert held.started == ["a", "e", "d", "b", "c"]  # the waited-for keys right after the one in flight


def test_submitting_again_runs_nothing_twice(held: Held) -> None:
    runs: list[str] = []
    q = RequestQueue(lambda k: runs.append(k) or k, 2)
    q.submit("abc")
    q.wait("abc")
    q.submit("abcd", first=True)
    q.wait("abcd")
    assert sorted(runs) == ["a", "b", "c", "d"]


def test_a_failure_starts_nothing_more_keeps_what_was_in_flight_and_is_raised(held: Held) -> None:
    delivered: list[Any] = []
    held.fail.add(1)
    q = RequestQueue(held, 3, lambda k, r: delivered.append(k))
    q.submit(range(8))
    held.when(lambda: held.running == [0, 1, 2])
    held.release(0)
    held.when(lambda: held.running == [1, 2, 3])
    q.wait([0])  # answered before the failure: waiting for it is fine
    held.release(1)  # fails
    held.when(lambda: q.failure is not None)
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            q.wait([5])
        except RuntimeError as e:
            errors.append(e)

    waiter = threading.Thread(target=wait)
    waiter.start()
    held.release(2)
    held.release(3)
    waiter.join(BOUND)
    assert [str(e) for e in errors] == ["job 1 failed"]  # raised once those in flight ended
    assert held.started == [0, 1, 2, 3]  # nothing started after the failure
    assert sorted(delivered) == [0, 2, 3]  # the ones in flight were still delivered
    with pytest.raises(RuntimeError, match="job 1 failed"):
        q.wait([1])
    q.wait([2, 3])


def test_a_delivery_that_raises_is_a_failure() -> None:
    def deliver(key: int, result: Any) -> None:
        raise OSError("disk full")

    q = RequestQueue(lambda k: k, 2, deliver)
    with pytest.raises(OSError, match="disk full"):
        q.wait([1, 2, 3])


def test_stop_drops_the_waiting_jobs(held: Held) -> None:
    q = RequestQueue(held, 1)
    q.submit("abc")
    held.when(lambda: held.running == ["a"])
    q.stop()
    held.release("a")
    q.wait("a")
    with pytest.raises(RuntimeError, match="stopped before 'b'"):
        q.wait("b")
    assert held.started == ["a"]


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RequestQueue(lambda k: k, 0)
