"""A tenant's member-access settings (one item) and its members' token generations (on the profile)."""

from __future__ import annotations

import json
from datetime import datetime

from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.expressions.update import Action

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.member_access import MemberAccess, SigningKey
from chalicelib.persistence.audit import audited_transaction
from chalicelib.persistence.errors import response_code, translate_transient
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.index_keys import PROFILE, member_pk
from chalicelib.persistence.models import MemberAccessItem

MEMBER_ACCESS_PK = "MEMBERACCESS"
MEMBER_ACCESS_SK = "#SETTINGS"


class MemberAccessRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def get(self, *, consistent: bool = False) -> MemberAccess | None:
        with translate_transient():
            try:
                item = self._models.member_access.get(MEMBER_ACCESS_PK, MEMBER_ACCESS_SK, consistent_read=consistent)
            except DoesNotExist:
                return None
        return to_member_access(item)

    def put_signing_key(self, key: SigningKey, *, replace: bool, audit: AuditEntry | None = None) -> SigningKey:
        model = self._models.member_access
        item = model(pk=MEMBER_ACCESS_PK, sk=MEMBER_ACCESS_SK)
        actions: list[Action] = [
            model.signing_key_id.set(key.key_id),
            model.signing_key_sealed.set(key.sealed),
            model.signing_key_created_at.set(key.created_at),
            model.updated_at.set(key.created_at),
        ]
        try:
            with translate_transient():
                if replace:
                    with audited_transaction(self._models.audit, audit) as tx:
                        tx.update(item, actions=actions)
                else:  # the first key only: two first tokens minted at once agree on one key
                    item.update(actions=actions, condition=model.signing_key_id.does_not_exist())
        except UpdateError as error:
            if response_code(error) != "ConditionalCheckFailedException":
                raise
            found = self.get(consistent=True)
            if found is None or found.signing_key is None:
                raise
            return found.signing_key
        return key

    def set_allowed_origins(
        self, origins: tuple[str, ...], at: datetime, audit: AuditEntry | None = None
    ) -> MemberAccess:
        model = self._models.member_access
        item = model(pk=MEMBER_ACCESS_PK, sk=MEMBER_ACCESS_SK)
        with audited_transaction(self._models.audit, audit) as tx:
            tx.update(item, actions=[model.allowed_origins.set(json.dumps(list(origins))), model.updated_at.set(at)])
        access = self.get(consistent=True)
        assert access is not None  # just written
        return access

    def token_generation(self, member_id: str, *, consistent: bool = False) -> int | None:
        with translate_transient():
            try:
                item = self._models.member.get(
                    member_pk(member_id),
                    PROFILE,
                    consistent_read=consistent,
                    attributes_to_get=["pk", "sk", "token_generation", "erased_at"],
                )
            except DoesNotExist:
                return None
        if item.erased_at is not None:  # an erased member has no tokens: none is minted or accepted
            return None
        return int(item.token_generation or 0)

    def next_token_generation(self, member_id: str) -> int | None:
        model = self._models.member
        item = model(pk=member_pk(member_id), sk=PROFILE)
        try:
            with translate_transient():
                item.update(actions=[model.token_generation.add(1)], condition=model.pk.exists())
        except UpdateError as error:
            if response_code(error) == "ConditionalCheckFailedException":
                return None
            raise
        return int(item.token_generation or 0)


def to_member_access(item: MemberAccessItem) -> MemberAccess:
    key = None
    if item.signing_key_id and item.signing_key_sealed and item.signing_key_created_at:
        key = SigningKey(
            key_id=item.signing_key_id, sealed=item.signing_key_sealed, created_at=item.signing_key_created_at
        )
    origins = tuple(json.loads(item.allowed_origins)) if item.allowed_origins else ()
    return MemberAccess(signing_key=key, allowed_origins=origins, updated_at=item.updated_at)
