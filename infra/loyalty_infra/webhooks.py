"""Webhook delivery: the queue ``loyalty-<stage>-deliveries`` and its dead-letter queue,
the two webhook functions, and the customer-managed KMS key sealing the endpoints' signing
secrets (``LOYALTY_WEBHOOK_KMS_KEY_ID``).

The ``dispatch-webhooks`` schedule enqueues one dispatch unit per tenant; the
``deliver-webhooks`` function consumes them (one message at a time) and enqueues one drain
per due endpoint on the same queue (``LOYALTY_DELIVERIES_QUEUE_URL``). Deliveries go out to
the internet from the functions themselves: no function is in a VPC (one would need a NAT
gateway for that egress)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Tags
from aws_cdk import aws_kms as kms
from constructs import Construct

from .functions import ChaliceApp
from .queues import QueueWithDeadLetters, queue_with_dead_letters
from .stages import StageSettings

#: The queue's name in the app (``DELIVERIES_QUEUE`` in chalicelib/jobs/webhooks.py).
APP_DELIVERIES_QUEUE_NAMES = ("loyalty-deliveries",)
#: The webhook functions (``deliver-webhooks``, ``dispatch-webhooks`` in the app). The
#: consumer's timeout (60 s: a drain stops starting sends after 20 s, and one exchange may
#: take 10 s more) is in .chalice/config.json (``lambda_functions``).
DELIVERIES_FUNCTION = "DeliverWebhooks"
DISPATCH_FUNCTION = "DispatchWebhooks"
#: Deliveries of a webhook message before it goes to the dead-letter queue. Only storage
#: failures raise (a failing endpoint waits out its backoff on its own record), and a lost
#: drain is requested again by the next minute's sweep.
DELIVERIES_RECEIVES = 5
#: What sealing and opening webhook signing secrets takes (chalicelib/integrations/kms.py):
#: Encrypt and Decrypt, nothing else (the key is this stack's: no CreateKey, CreateAlias
#: or ListAliases, which only the local fallback calls).
WEBHOOK_KEY_ACTIONS = ("kms:Decrypt", "kms:Encrypt")
#: The encryption context of every sealed secret (chalicelib/domain/webhooks.py, _context):
#: exactly these keys, both present.
WEBHOOK_KEY_CONTEXT = ("tenant_id", "webhook_id")


def deliveries_queues(scope: Construct, stage: StageSettings) -> QueueWithDeadLetters:
    return queue_with_dead_letters(
        scope,
        "Deliveries",
        queue_name=f"{stage.resource_prefix}-deliveries",
        component="webhooks",
        # 6x the deliver-webhooks function's timeout (60 s, .chalice/config.json), as AWS
        # advises (also above the drain and dispatch leases' 90 s).
        visibility_timeout=Duration.minutes(6),
        # A message is work for the next minutes: the sweep asks again every minute.
        retention_period=Duration.days(1),
        app_queue_names=APP_DELIVERIES_QUEUE_NAMES,
        max_receive_count=DELIVERIES_RECEIVES,
    )


def webhook_key(scope: Construct, stage: StageSettings) -> kms.Key:
    """The key sealing webhook signing secrets (rotation on, alias
    ``alias/loyalty-<stage>-webhooks``). Kept if the stack is deleted (the secrets in the
    tenant tables would not open without it); rotated yearly by KMS (old ciphertexts still
    open). Its key policy is the CDK's default (the account delegates to IAM): who may use
    it is the function role's ``WebhookSecrets`` statement (permissions.py)."""
    key = kms.Key(
        scope,
        "WebhookSecretsKey",
        description=f"Seals the {stage.resource_prefix} webhook signing secrets",
        enable_key_rotation=True,
        alias=f"alias/{stage.resource_prefix}-webhooks",
        removal_policy=RemovalPolicy.RETAIN,
    )
    Tags.of(key).add("component", "webhooks")
    return key


def require_webhook_functions(app: ChaliceApp) -> None:
    app.require({DELIVERIES_FUNCTION, DISPATCH_FUNCTION}, "chalicelib/jobs/webhooks.py")
