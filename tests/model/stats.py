"""How much the model-based test exercised, per backend: printed at the end of the run.

Under pytest-xdist the terminal belongs to the controller process, which never imports
this package, so each test also emits its own figures as a ``ModelRunReport`` warning
(xdist forwards warnings to the controller's "warnings summary").
"""

from __future__ import annotations

import os
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field


class ModelRunReport(UserWarning):
    """Not a problem: how many examples and steps a model-based or fuzz test ran."""


@dataclass
class RunStats:
    examples: Counter[str] = field(default_factory=Counter)
    steps: Counter[str] = field(default_factory=Counter)
    faulted_steps: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    outcomes: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    rules: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    #: Points lifecycle: jobs run, lots settled by jobs and by movements, reversals, clock moves.
    lifecycle: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    seconds: Counter[str] = field(default_factory=Counter)

    def line(self, backend: str) -> str:
        outcomes = ", ".join(f"{code} {count}" for code, count in self.outcomes[backend].most_common())
        lifecycle = ", ".join(f"{what} {count}" for what, count in sorted(self.lifecycle[backend].items()))
        rules = ", ".join(f"{name} {count}" for name, count in self.rules[backend].most_common())
        return (
            f"ledger state machine [{backend}]: {self.steps[backend]} steps in {self.examples[backend]} examples "
            f"({self.seconds[backend]:.0f} s); {self.faulted_steps[backend]} steps under injected faults "
            f"({self.injected[backend]} faults injected); outcomes: {outcomes}; lifecycle: {lifecycle or 'none'}; "
            f"steps by rule: {rules or 'none'}"
        )

    def lines(self) -> list[str]:
        return [self.line(backend) for backend in sorted(self.steps)]


STATS = RunStats()
#: Summary lines by harness ("model", "fuzz"), printed by each directory's conftest.
SUMMARY: defaultdict[str, list[str]] = defaultdict(list)


def report(line: str, *, harness: str = "model") -> None:
    """Make ``line`` visible at the end of the run, with or without xdist."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        warnings.warn(ModelRunReport(line), stacklevel=2)
    else:
        SUMMARY[harness].append(line)
