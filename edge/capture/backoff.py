"""Retry with exponential backoff and jitter (tenacity), stoppable at once by an event.

Used for reopening a camera and for reaching the aggregator and the uplink. The attempt
count only resets when an attempt *returns*: a stream that ran healthily for a while and
then broke returns, so its reopening starts again at once; one that breaks right after
opening raises, so a flapping camera backs off instead of reconnecting in a tight loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_when_event_set,
    wait_exponential_jitter,
)


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts: ``initial_s`` doubling up to ``max_s``, plus 0..``jitter_s``.

    The jitter spreads the reconnections of many cameras after a network blip.
    """

    initial_s: float = 0.5
    max_s: float = 30.0
    jitter_s: float = 1.0
    reset_after_s: float = 30.0  # a stream healthy this long starts the backoff afresh

    def retrying(
        self,
        stop: threading.Event,
        retry_on: type[BaseException] | tuple[type[BaseException], ...],
        before_sleep: Callable[[RetryCallState], None] | None = None,
    ) -> Retrying:
        """A tenacity ``Retrying`` that retries ``retry_on`` until ``stop`` is set.

        Its sleeps wait on ``stop``, so stopping never waits out a backoff; once ``stop``
        is set the last error is raised.
        """

        def pause(seconds: float) -> None:
            stop.wait(seconds)

        return Retrying(
            wait=wait_exponential_jitter(
                multiplier=self.initial_s, max=self.max_s, jitter=self.jitter_s
            ),
            retry=retry_if_exception_type(retry_on),
            stop=stop_when_event_set(stop),
            sleep=pause,
            before_sleep=before_sleep,
            reraise=True,
        )


def next_delay(state: RetryCallState) -> float:
    """The delay tenacity chose before the next attempt (for logs)."""
    return state.next_action.sleep if state.next_action is not None else 0.0
