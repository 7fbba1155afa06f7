"""How long to wait before retrying: exponential, optionally capped, optionally jittered."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Literal

#: ``full``: anywhere in [0, step]; ``equal``: in [step / 2, step] (never less than half the
#: step); ``none``: the step itself.
Jitter = Literal["full", "equal", "none"]


def backoff_seconds(
    attempt: int,
    *,
    base: float,
    cap: float = math.inf,
    jitter: Jitter,
    rand: Callable[[], float] | None = None,
) -> float:
    """The wait after ``attempt`` doublings: the step ``base * 2**attempt``, at most ``cap``,
    jittered with ``rand()`` (in [0, 1); default ``random.random``, looked up at each call)."""
    step = min(cap, base * 2**attempt)
    draw = rand or random.random
    if jitter == "none":
        return step
    if jitter == "full":
        return draw() * step
    return step / 2 + draw() * step / 2
