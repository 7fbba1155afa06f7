"""Webhook signing secrets sealed with AWS KMS.

Each secret is encrypted by KMS itself (``Encrypt``; a secret is 50 bytes, far under KMS's
4 KB limit, so no local cipher or data key is needed) under the stage's key, with an
encryption context naming the tenant and the endpoint: a ciphertext copied to another
tenant's or endpoint's record does not decrypt. The table holds only ciphertext; the plain
secret exists in memory while a delivery is signed, and in the one response that shows it.

Opened secrets are cached per warm container for a few minutes (KMS is billed and throttled
per request; a drain signs many deliveries with the same secrets).

Locally (no key configured) the key is created on first use under the alias
``alias/<table prefix>-webhooks`` (moto in tests and ``make run``); deployed, infra/ creates
the key and names it in ``LOYALTY_WEBHOOK_KMS_KEY_ID``, and the functions may not create keys.
"""

from __future__ import annotations

import base64
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from chalicelib.domain.errors import TransientStoreError

CACHE_SECONDS = 300.0
CACHE_ENTRIES = 512
#: KMS's answers that mean "not now": the request may be retried (the client gets 503 retry_later).
TRANSIENT_KMS_ERRORS = frozenset(
    {
        "ThrottlingException",
        "KMSInternalException",
        "KeyUnavailableException",
        "DependencyTimeoutException",
        "LimitExceededException",
    }
)


@contextmanager
def _kms_call(operation: str) -> Iterator[None]:
    """KMS unreachable, throttled or briefly failing: TransientStoreError (503), never a 500."""
    try:
        yield
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in TRANSIENT_KMS_ERRORS:
            raise TransientStoreError(f"KMS {operation} failed for now") from error
        raise
    except (ConnectionError, HTTPClientError) as error:
        raise TransientStoreError(f"KMS {operation} unreachable") from error


class KmsSealer:
    def __init__(self, client: Any, *, key_id: str | None, local_alias: str) -> None:
        self._client = client
        self._key_id = key_id
        self._local_alias = local_alias
        self._lock = threading.Lock()
        self._opened: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], tuple[float, str]] = OrderedDict()

    def seal(self, secret: str, context: dict[str, str]) -> str:
        with _kms_call("Encrypt"):
            blob = self._client.encrypt(KeyId=self._key(), Plaintext=secret.encode(), EncryptionContext=context)
        return base64.b64encode(blob["CiphertextBlob"]).decode()

    def open(self, sealed: str, context: dict[str, str]) -> str:
        cache_key = (sealed, tuple(sorted(context.items())))
        now = time.monotonic()
        with self._lock:
            hit = self._opened.get(cache_key)
            if hit is not None and hit[0] > now:
                return hit[1]
        with _kms_call("Decrypt"):
            answer = self._client.decrypt(CiphertextBlob=base64.b64decode(sealed), EncryptionContext=context)
        secret = bytes(answer["Plaintext"]).decode()
        with self._lock:
            self._opened[cache_key] = (now + CACHE_SECONDS, secret)
            while len(self._opened) > CACHE_ENTRIES:
                self._opened.popitem(last=False)
        return secret

    def _key(self) -> str:
        if self._key_id is None:
            self._key_id = self.ensure_local_key()
        return self._key_id

    def ensure_local_key(self) -> str:
        """The local key's alias, creating key and alias when missing (moto; never deployed)."""
        with _kms_call("ListAliases"):
            aliases = self._client.list_aliases().get("Aliases", [])
        if not any(a.get("AliasName") == self._local_alias for a in aliases):
            key = self._client.create_key(Description="webhook signing secrets (local)")["KeyMetadata"]["KeyId"]
            try:
                self._client.create_alias(AliasName=self._local_alias, TargetKeyId=key)
            except self._client.exceptions.AlreadyExistsException:
                pass  # another process made it first
        return self._local_alias
