"""Privacy: a member's data on request (export) and erasure (admin)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.routing import REPLAYED_HEADER, ApiRequest, Result, endpoint, schemas
from chalicelib.domain.scopes import Scope

if TYPE_CHECKING:
    from chalicelib.api.schemas.privacy import MemberExportOut

bp = Blueprint(__name__)
TAG = "Privacy"


@endpoint(
    bp,
    "/members/{member_id}/export",
    "GET",
    summary="Everything held about a member, as one JSON document",
    description=(
        "One machine-readable document of everything the program holds about the member (GDPR access "
        "and portability): profile and consent, balance and unspent lots, the whole ledger, tier history, "
        "coupons, referrals (the member's own and those they made), subscriptions, partner activity and "
        "the member's events. Reads only. 410 `member_erased` once the member was erased. The consent comes "
        "with its history (every change, as `/consents` lists it), transfers sent and received are in the "
        "ledger (its entries of `type` transfer), and the challenges open to the member or taken part in come with "
        "the member's progress, with the badges they hold."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.privacy.MemberExportOut,
)
def export_member(request: ApiRequest, member_id: str) -> MemberExportOut:
    from chalicelib.api.presenters import privacy as presenters

    privacy = request.services.for_tenant(request.tenant).privacy
    return presenters.member_export(privacy.export(member_id, actor_key_id=request.tenant.key_id))


@endpoint(
    bp,
    "/members/{member_id}/erase",
    "POST",
    summary="Erase a member: personal data removed, the books kept",
    description=(
        "Erases the member (GDPR erasure). Their personal data goes: name, email, birthday, external id "
        "(and its look-up), card and referral codes, segments, consent, and the movement metadata keys "
        "and descriptions the program marks as personal. The financial record stays: their outstanding "
        "points (available and pending) are settled by one recorded `adjust` entry (reason "
        "`member_erased`), so the liability drops and balances, partner settlements and insights still "
        "reconcile. A `member.erased` event (ids and points only) is published. Afterwards the erased "
        "identifiers find nobody, requests for the member answer 410 `member_erased`, and an import row "
        "with the erased external id is refused. Requires an `Idempotency-Key`; erasing an erased member "
        "answers the first erasure (`Idempotent-Replayed: true`)."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.privacy.ErasureOut,
    idempotency_key=True,
    response_headers=((REPLAYED_HEADER, "`true` when the member was already erased (this answers that erasure)."),),
)
def erase_member(request: ApiRequest, member_id: str) -> Result:
    from chalicelib.api.presenters import privacy as presenters

    erasure = request.services.for_tenant(request.tenant).privacy.erase(
        member_id, request.idempotency_key or "", actor_key_id=request.tenant.key_id
    )
    return Result.replayable(presenters.erasure(erasure), replayed=erasure.replayed)
