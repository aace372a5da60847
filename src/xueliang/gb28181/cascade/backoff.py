"""How long a lower platform waits before registering again after a failure.

In the field the danger is not waiting too long but too little: a city platform with a wrong
password or a stopped province hammering the upper with REGISTERs every few milliseconds (a
tight loop) gets its address blocked by the upper's firewall. So the delay doubles with every
consecutive failure up to a cap, and is jittered, so that many links that failed together (the
province restarted) do not come back in lock-step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(slots=True, frozen=True)
class Backoff:
    """Exponential back-off: ``initial * 2**(n-1)`` for the n-th consecutive failure, capped
    at ``maximum``, then reduced by up to ``jitter`` (a fraction) at random.

    The delay never falls below ``initial * (1 - jitter)``, so no input makes a tight loop.
    """

    initial: float = 2.0
    maximum: float = 300.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not self.initial > 0 or not self.maximum >= self.initial:
            raise ValueError("back-off needs 0 < initial <= maximum")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError("jitter is a fraction in [0, 1)")

    def nominal(self, failures: int) -> float:
        """The delay before jitter after ``failures`` consecutive failures (>= 1)."""
        exponent = min(max(failures, 1) - 1, 62)  # 2**62 * initial is past any cap
        return min(self.maximum, self.initial * 2.0**exponent)

    def delay(self, failures: int, rng: random.Random) -> float:
        # "Equal jitter" rather than full jitter: the delay still grows with each failure, so
        # a test (and an operator reading the log) sees the back-off, yet links spread out.
        return self.nominal(failures) * (1.0 - self.jitter * rng.random())
