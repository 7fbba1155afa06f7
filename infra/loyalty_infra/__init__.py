"""The CDK app that deploys the loyalty API (``make synth``, ``make deploy STAGE=...``).

``application.build_app`` builds it; ``stack.LoyaltyStack`` is one stage; ``packaging``
builds the Lambda package offline; ``stages`` holds what differs between stages. This
package imports nothing heavy itself (the tests import parts of it cheaply).
"""
