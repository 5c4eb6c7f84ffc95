"""Retry with exponential backoff and jitter (tenacity), stoppable at once by an event:
the one way every service retries (reopening a camera, reaching the aggregator, the
uplink or cloud ingest, subscribing to the aggregator, delivering to a plant system) and
spaces restarts (the supervisor). The attempt
count only resets when an attempt *returns*: a stream that ran healthily for a while and
then broke returns, so its reopening starts again at once; one that breaks right after
opening raises, so a flapping camera backs off instead of reconnecting in a tight loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
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
        give_up_after_s: float | None = None,
    ) -> Retrying:
        """A tenacity ``Retrying`` that retries ``retry_on`` until ``stop`` is set (or
        ``give_up_after_s`` have passed).

        Its sleeps wait on ``stop``, so stopping never waits out a backoff; once it stops
        the last error is raised.
        """

        def pause(seconds: float) -> None:
            stop.wait(seconds)

        return Retrying(
            wait=self._wait(),
            retry=retry_if_exception_type(retry_on),
            stop=stop_when_event_set(stop)
            if give_up_after_s is None
            else stop_when_event_set(stop) | stop_after_delay(give_up_after_s),
            sleep=pause,
            before_sleep=before_sleep,
            reraise=True,
        )

    def async_retrying(
        self,
        retry_on: type[BaseException] | tuple[type[BaseException], ...],
        before_sleep: Callable[[RetryCallState], None] | None = None,
    ) -> AsyncRetrying:
        """The same for asyncio code: retries ``retry_on`` until it succeeds (cancel the
        task to stop it)."""
        return AsyncRetrying(
            wait=self._wait(),
            retry=retry_if_exception_type(retry_on),
            before_sleep=before_sleep,
            reraise=True,
        )

    def _wait(self) -> wait_exponential_jitter:
        return wait_exponential_jitter(
            multiplier=self.initial_s, max=self.max_s, jitter=self.jitter_s
        )

    def delay(self, attempt: int) -> float:
        """The wait before attempt ``attempt + 1`` (for restarts that are not calls)."""
        wait = self._wait()

        class _State:  # the one attribute tenacity's wait functions read
            attempt_number = attempt

        return float(wait(_State()))  # type: ignore[arg-type]


def next_delay(state: RetryCallState) -> float:
    """The delay tenacity chose before the next attempt (for logs)."""
    return state.next_action.sleep if state.next_action is not None else 0.0
