"""Webhook pieces without storage or network: the SSRF policy, backoff, signatures, subscriptions."""

from __future__ import annotations

import ipaddress
import random
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks import WebhookVerificationError

from chalicelib.domain.errors import InvalidRequest, TransientStoreError
from chalicelib.domain.webhooks import (
    ALL_EVENTS,
    WEBHOOK_DISABLED,
    DeliveryPolicy,
    SigningSecret,
    Webhook,
    WebhookStatus,
    new_signing_secret,
)
from chalicelib.integrations import ssrf
from chalicelib.integrations.http import sign
from chalicelib.integrations.kms import KmsSealer
from chalicelib.integrations.ssrf import UnsafeUrl, UrlPolicy, refusal

NOW = datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.0.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.10.10", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address to refuse, not one to bind
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "public"),  # carrier-grade NAT: not global
        ("::ffff:192.168.0.1", "private"),  # IPv4-mapped
        ("fc00::1", "private"),
    ],
)
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    found = refusal(ipaddress.ip_address(address), allow_loopback=False)
    assert found is not None and reason in found


def test_public_addresses_pass_and_loopback_only_in_local_mode() -> None:
    for address in ("93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"):
        assert refusal(ipaddress.ip_address(address), allow_loopback=False) is None
    assert refusal(ipaddress.ip_address("127.0.0.1"), allow_loopback=True) is None
    assert refusal(ipaddress.ip_address("10.0.0.1"), allow_loopback=True) is not None


def test_the_policy_resolves_names_and_connects_to_the_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"hooks.example.com": ["93.184.216.34"], "evil.example.com": ["93.184.216.34", "10.0.0.1"]}
    monkeypatch.setattr(ssrf, "resolve", lambda host, port: answers[host])
    policy = UrlPolicy(local_mode=False)

    target = policy.target("https://hooks.example.com:8443/in?x=1")
    assert (str(target.address), target.port, target.path) == ("93.184.216.34", 8443, "/in?x=1")
    assert target.host_header == "hooks.example.com:8443"
    assert policy.target("https://hooks.example.com").host_header == "hooks.example.com"

    with pytest.raises(UnsafeUrl, match="private"):
        policy.target("https://evil.example.com/")  # one bad answer is enough
    with pytest.raises(InvalidRequest) as refused:
        policy.check("http://hooks.example.com/")
    assert refused.value.details["fields"][0]["path"] == "url"
    for url in (
        "https://u:p@hooks.example.com/",
        "https://hooks.example.com/#x",
        "gopher://hooks.example.com/",
        "https://",
    ):
        with pytest.raises(UnsafeUrl):
            policy.target(url)


def test_local_mode_allows_plain_http_to_loopback_only() -> None:
    local = UrlPolicy(local_mode=True)
    assert str(local.target("http://127.0.0.1:9000/hook").address) == "127.0.0.1"
    with pytest.raises(UnsafeUrl):
        local.target("http://10.0.0.1/hook")
    with pytest.raises(UnsafeUrl):
        UrlPolicy(local_mode=False).target("http://127.0.0.1:9000/hook")


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = DeliveryPolicy()
    rand = random.Random(7).random
    first = [policy.backoff(1, rand).total_seconds() for _ in range(50)]
    assert all(15 <= s <= 30 for s in first) and len(set(first)) > 40  # jitter spreads retries
    assert 60 <= policy.backoff(3, rand).total_seconds() <= 120
    late = policy.backoff(30, rand).total_seconds()
    assert 1800 <= late <= 3600
    # Attempts until the 24 h window closes: the endpoint is retried all day, about hourly at the end.
    elapsed, attempts = timedelta(), 0
    while elapsed < policy.retry_window:
        attempts += 1
        elapsed += policy.backoff(attempts, lambda: 1.0)
    assert 25 <= attempts <= 40


def test_every_active_secret_signs_and_each_verifies() -> None:
    old, new = new_signing_secret(), new_signing_secret()
    header = sign("dlv_1", datetime.now(UTC), '{"a":1}', [new, old])
    assert header.count("v1,") == 2
    headers = {"webhook-id": "dlv_1", "webhook-timestamp": str(int(datetime.now(UTC).timestamp()))}
    for secret in (old, new):
        assert StandardWebhook(secret).verify('{"a":1}', {**headers, "webhook-signature": header}) == {"a": 1}
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(new_signing_secret()).verify('{"a":1}', {**headers, "webhook-signature": header})


def test_subscriptions_and_secret_expiry() -> None:
    webhook = Webhook(
        webhook_id="whk_1",
        url="https://hooks.example.com",
        events=frozenset({ALL_EVENTS}),
        description=None,
        status=WebhookStatus.ENABLED,
        secrets=(SigningSecret("new", NOW), SigningSecret("old", NOW, expires_at=NOW + timedelta(hours=24))),
        created_at=NOW,
        updated_at=NOW,
        active_since=NOW,
    )
    assert webhook.subscribes("points.earned") and not webhook.subscribes(WEBHOOK_DISABLED)
    assert [s.sealed for s in webhook.signing_secrets(NOW + timedelta(hours=23))] == ["new", "old"]
    assert [s.sealed for s in webhook.signing_secrets(NOW + timedelta(hours=24))] == ["new"]


class _FailingKms:
    """A KMS client whose every call fails with ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def encrypt(self, **_: object) -> dict[str, object]:
        self.calls += 1
        raise self.error

    decrypt = encrypt


@pytest.mark.parametrize(
    "error",
    [
        ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Encrypt"),
        ClientError({"Error": {"Code": "KMSInternalException", "Message": "oops"}}, "Encrypt"),
        EndpointConnectionError(endpoint_url="https://kms.eu-west-1.amazonaws.com"),
    ],
    ids=["throttled", "internal", "unreachable"],
)
def test_kms_failing_for_now_is_a_retry_later_not_a_500(error: Exception) -> None:
    sealer = KmsSealer(_FailingKms(error), key_id="alias/k", local_alias="alias/k")
    with pytest.raises(TransientStoreError):
        sealer.seal("whsec_x", {"tenant_id": "acme", "webhook_id": "whk_1"})
    with pytest.raises(TransientStoreError):
        sealer.open("c2VhbGVk", {"tenant_id": "acme", "webhook_id": "whk_1"})


def test_kms_refusing_for_good_is_not_disguised_as_transient() -> None:
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Encrypt")
    sealer = KmsSealer(_FailingKms(denied), key_id="alias/k", local_alias="alias/k")
    with pytest.raises(ClientError):
        sealer.seal("whsec_x", {"tenant_id": "acme", "webhook_id": "whk_1"})
