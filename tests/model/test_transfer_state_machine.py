"""Runs the transfer machine (tests/model/transfers.py) on both emulators."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.model.transfers import TransferMachine

#: A fixed, small number of examples per backend, derandomized so that `make test` searches the
#: same sequences on every machine (wider random searches: `make soak`).
EXAMPLES = {"dynamodb-local": 8, "moto": 8}
STEPS = 30


def test_transfers_agree_with_their_model(model_backend: str) -> None:
    run_state_machine_as_test(
        TransferMachine,
        settings=settings(
            max_examples=EXAMPLES[model_backend],
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
            derandomize=os.environ.get("LOYALTY_SOAK_STEPS") is None,
        ),
    )
