"""Unit-test fixtures."""

from __future__ import annotations

import pytest

from tests.unit.builders import Ledgerland, build_world


@pytest.fixture
def world() -> Ledgerland:
    return build_world()
