"""One outbound call, tried again when it says so → its result, or the last error (Telegram and Zalo share it)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[Any]]


class RetryLater(Exception):
    """Raised by one attempt that may succeed if tried again: after `delay` seconds, or after backoff."""

    def __init__(self, error: Exception, delay: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay = delay


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    max_retry_after: float = 120.0  # a platform asking to wait longer than this: give up at once

    def backoff(self, attempt: int) -> float:
        """Exponential backoff after failed attempt number `attempt` (0-based): base, 2·base, 4·base … capped."""
        return float(min(self.backoff_cap, self.backoff_base * (2**attempt)))


async def with_retries(
    attempt: Callable[[], Awaitable[T]], policy: RetryPolicy, sleep: Sleep = asyncio.sleep, *, what: str = ""
) -> T:
    """Run `attempt` until it returns, raises anything but RetryLater, or the attempts are used up.

    The attempt decides what is worth retrying (HTTP 429/5xx, network errors, an error code in a 200 body)
    by raising RetryLater; the last such error is raised when no attempt is left.
    """
    for number in range(policy.max_attempts):
        try:
            return await attempt()
        except RetryLater as signal:
            if number == policy.max_attempts - 1:
                raise signal.error from None
            if signal.delay is not None and signal.delay > policy.max_retry_after:
                raise signal.error from None
            delay = signal.delay if signal.delay is not None else policy.backoff(number)
            log.info("%s: %s; retrying in %.2fs", what or "outbound call", signal.error, delay)
            await sleep(delay)
    raise RuntimeError("with_retries needs max_attempts >= 1")
