"""Every prefix a feature mints its ledger keys under is one a client's Idempotency-Key may not take."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import chalicelib.domain
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.movement_requests import MINTED_KEY_PREFIXES, refuse_minted_key

#: Prefixes that are not the ledger's own: an API key's secret, and a member's redemptions, which
#: run under the member's id and their own key (a brand's key of that shape meets only that member's).
NOT_LEDGER_MINTED = {"KEY_PREFIX", "MEMBER_KEY_PREFIX"}


def _minted_prefixes() -> dict[str, str]:
    found = {}
    for info in pkgutil.iter_modules(chalicelib.domain.__path__, prefix="chalicelib.domain."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if re.fullmatch(r"[A-Z_]*KEY_PREFIX", name) and name not in NOT_LEDGER_MINTED and isinstance(value, str):
                found[f"{info.name}.{name}"] = value
    return found


def test_every_features_minted_prefix_is_reserved() -> None:
    prefixes = _minted_prefixes()
    assert len(prefixes) >= 9, prefixes
    assert {name: value for name, value in prefixes.items() if value not in MINTED_KEY_PREFIXES} == {}


@pytest.mark.parametrize("prefix", MINTED_KEY_PREFIXES)
def test_a_clients_key_of_a_minted_shape_is_refused(prefix: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        refuse_minted_key(f"{prefix}anything")
    assert refused.value.details["fields"][0]["type"] == "reserved_prefix"
