"""Admission: `running` at once, up to `waiting` more queue for their turn, the rest are Busy at once."""
from __future__ import annotations

import threading

import pytest

from api.services.admission import Admission
from api.services.errors import Busy


@pytest.mark.timeout(30)
def test_one_runs_one_waits_its_turn_the_next_is_refused_at_once() -> None:
    admission = Admission(running=1, waiting=1, wait_seconds=20)
    entered, order = threading.Event(), []

    def queued() -> None:
        entered.set()
        with admission.admitted():
            order.append("queued ran")

    with admission.admitted():
        waiter = threading.Thread(target=queued)
        waiter.start()
        entered.wait(5)
        while admission._waiting == 0:  # the waiter is in the queue
            threading.Event().wait(0.005)
        with pytest.raises(Busy):  # the queue is full: refused without waiting
            with admission.admitted():
                pass
        order.append("first done")
    waiter.join(10)
    assert order == ["first done", "queued ran"]
    with admission.admitted():  # and the slot is free again
        pass


@pytest.mark.timeout(30)
def test_a_waiter_whose_turn_does_not_come_is_refused() -> None:
    admission = Admission(running=1, waiting=1, wait_seconds=0.2)
    with admission.admitted():
        outcome = []
        t = threading.Thread(target=lambda: outcome.append(pytest.raises(Busy, admission.admitted().__enter__)))
        t.start()
        t.join(10)
    assert len(outcome) == 1 and outcome[0].value.retry_after == 1
    assert admission._waiting == 0
