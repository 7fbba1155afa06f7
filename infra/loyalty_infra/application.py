"""The CDK app: one stack per deployed stage, checked by cdk-nag at synthesis."""

from __future__ import annotations

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from .stack import LoyaltyStack
from .stages import DEPLOYED_STAGES, load_stage


def build_app(app: App | None = None, stages: tuple[str, ...] | None = None, *, nag: bool = True) -> App:
    """One stack per deployed stage; cdk-nag's AwsSolutions pack runs at synthesis and fails it."""
    app = app or App()
    # `-c stages=prod` (make deploy) synthesises one stage; by default every deployed one.
    context = app.node.try_get_context("stages")
    if isinstance(context, str):
        context = [name.strip() for name in context.split(",") if name.strip()]
    requested = stages or tuple(context or DEPLOYED_STAGES)
    for name in requested:
        LoyaltyStack(app, load_stage(name))
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app
