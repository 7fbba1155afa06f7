"""Composition root: the Chalice app, its middleware and its blueprints. Nothing else."""

from __future__ import annotations

from chalice import Chalice, ConvertToMiddleware

from chalicelib.api import (
    access,
    audit,
    challenges,
    commerce,
    consents,
    console,
    events,
    exports,
    households,
    imports,
    insights,
    jobs,
    member_access,
    members,
    meta,
    partners,
    plans,
    points,
    privacy,
    program,
    reference,
    referrals,
    rewards,
    tenants,
    transfers,
    webhooks,
)
from chalicelib.jobs import imports as import_jobs
from chalicelib.jobs import lifecycle, provisioning
from chalicelib.jobs import webhooks as webhook_jobs
from chalicelib.observability import logger, metrics, tracing_middleware

#: The HTTP API, under /v1.
API_BLUEPRINTS = (
    meta,
    reference,
    tenants,
    access,
    program,
    members,
    points,
    jobs,
    events,
    rewards,
    webhooks,
    commerce,
    partners,
    referrals,
    plans,
    imports,
    exports,
    challenges,
    transfers,
    audit,
    consents,
    privacy,
    insights,
    member_access,
    households,
)
#: Scheduled jobs and queue consumers.
JOB_BLUEPRINTS = (lifecycle, provisioning, webhook_jobs, import_jobs)

app = Chalice(app_name="loyalty")

app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context(clear_state=True)))
app.register_middleware(ConvertToMiddleware(metrics.log_metrics))
app.register_middleware(tracing_middleware)

for blueprint in API_BLUEPRINTS:
    app.register_blueprint(blueprint.bp, url_prefix="/v1")
for blueprint in JOB_BLUEPRINTS:
    app.register_blueprint(blueprint.bp)
app.register_blueprint(console.bp)  # the brand console's static files, at /console/ (beside /v1)
