"""A graceful stop never cuts a request: a user stopped while it waits ends before it sends another, even
when its wait is over by the time Locust's kill lands (a kill is delivered on the event loop's next turn,
after any wake-up already due). No run, no sockets: the user's waits are made due at once."""

from __future__ import annotations

import gevent
import pytest
from gevent.pool import Group
from locust import User
from locust.env import Environment
from locust.exception import StopUser
from locust.user.task import LOCUST_STATE_RUNNING, DefaultTaskSet

from loadgen.users.base import LLMUser


class Waiter(LLMUser):
    """An LLM user outside a run: only its waits and its stop."""

    def __init__(self, environment: Environment) -> None:
        User.__init__(self, environment)  # no node: nothing is sent

    def wait_time(self) -> float:
        return 5.0


@pytest.mark.parametrize("wait", ["think time", "between sessions"])
def test_a_user_whose_wait_ends_as_it_is_stopped_sends_nothing_more(monkeypatch: pytest.MonkeyPatch,
                                                                    wait: str) -> None:
    user = Waiter(Environment())
    user._taskset_instance = DefaultTaskSet(user)
    real_sleep = gevent.sleep
    happened: list[str] = []

    def body() -> None:
        user._state = LOCUST_STATE_RUNNING
        try:
            if wait == "think time":
                user.sleep(5)  # ours: think time, tool latency, the back-off after a refused connection
            else:
                user.wait()  # Locust's, between two sessions
            happened.append("sent")  # the next request would go out here
            real_sleep(0)  # ... and be in flight
            happened.append("completed")
        except StopUser:
            happened.append("stopped")
        except gevent.GreenletExit:
            happened.append("killed mid-request")

    # Every wait is already over: its wake-up is queued on the loop before the stop's kill is.
    monkeypatch.setattr(gevent, "sleep", lambda seconds: real_sleep(0))
    group = Group()
    user._group, user._greenlet = group, group.spawn(body)
    real_sleep(0)  # the user starts and waits
    assert user.stop() is True  # Locust's graceful stop, on a waiting user: ended at once
    assert happened == ["stopped"]
