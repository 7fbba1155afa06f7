"""What a caller may do: the scopes of an API key and of a member token, and the checks of them.

Every route names the scope it needs when it is declared, so this vocabulary is read when the
app is imported: it depends on nothing but the error types.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from chalicelib.domain.errors import Forbidden

if TYPE_CHECKING:
    from chalicelib.domain.member_access import MemberContext
    from chalicelib.domain.tenants import TenantContext


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"
    #: A coalition partner's key: earns and redeems for the tenant's members through the
    #: partner routes, nothing else. Only a partner key holds it (``admin`` does not grant it).
    PARTNER = "partner"


def scope_allows(granted: frozenset[Scope], required: Scope) -> bool:
    """`admin` grants everything of the tenant but the partner routes; `read`, `write` and
    `partner` grant only themselves."""
    if required is Scope.PARTNER:
        return Scope.PARTNER in granted
    return Scope.ADMIN in granted or required in granted


def require_scope(context: TenantContext, required: Scope) -> None:
    if not scope_allows(context.scopes, required):
        raise Forbidden(
            f"this API key lacks the '{required}' scope",
            details={"required_scope": str(required), "key_scopes": sorted(str(s) for s in context.scopes)},
        )


class MemberScope(StrEnum):
    """What a member token may do: read the member's own account, redeem its rewards, change its consents."""

    READ = "member:read"
    REDEEM = "member:redeem"
    CONSENTS = "member:consents"


def require_member_scope(context: MemberContext, required: MemberScope) -> None:
    if required not in context.scopes:
        raise Forbidden(
            f"this member token lacks the '{required}' scope",
            details={"required_scope": str(required), "token_scopes": sorted(str(s) for s in context.scopes)},
        )
