"""Composition root: the Chalice app, its middleware and its blueprints. Nothing else."""

from __future__ import annotations

from chalice import Chalice, ConvertToMiddleware

from chalicelib.api import access, events, jobs, members, meta, points, program, rewards, tenants
from chalicelib.api import webhooks as webhook_routes
from chalicelib.jobs import handlers, provisioning
from chalicelib.jobs import webhooks as webhook_jobs
from chalicelib.observability import logger, metrics, tracing_middleware

app = Chalice(app_name="loyalty")

app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context(clear_state=True)))
app.register_middleware(ConvertToMiddleware(metrics.log_metrics))
app.register_middleware(tracing_middleware)

for blueprint in (meta, tenants, access, program, members, points, jobs, events, rewards):
    app.register_blueprint(blueprint.bp, url_prefix="/v1")
app.register_blueprint(handlers.bp)
app.register_blueprint(provisioning.bp)
app.register_blueprint(webhook_routes.bp, url_prefix="/v1")
app.register_blueprint(webhook_jobs.bp)

# Commerce integrations: the generic order intake and Shopify-style webhooks (issue 5).
from chalicelib.api import commerce as commerce_routes  # noqa: E402

app.register_blueprint(commerce_routes.bp, url_prefix="/v1")

# Coalition partners: the registry, the partner-key routes and the settlement (issue 5).
from chalicelib.api import partners as partner_routes  # noqa: E402

app.register_blueprint(partner_routes.bp, url_prefix="/v1")

# Referrals and member codes: the program's versions, a referrer's referrals, codes (issues 4, 5).
from chalicelib.api import referrals as referral_routes  # noqa: E402

app.register_blueprint(referral_routes.bp, url_prefix="/v1")
# Paid membership: plans and members' subscriptions (issue 4).
from chalicelib.api import plans as plan_routes  # noqa: E402

app.register_blueprint(plan_routes.bp, url_prefix="/v1")
# Bulk import and export (issue 5): imports land in job units (the jobs queue, or in-process).
from chalicelib.api import exports as export_routes  # noqa: E402
from chalicelib.api import imports as import_routes  # noqa: E402
from chalicelib.jobs import imports as import_jobs  # noqa: E402

app.register_blueprint(import_routes.bp, url_prefix="/v1")
app.register_blueprint(export_routes.bp, url_prefix="/v1")
app.register_blueprint(import_jobs.bp)
