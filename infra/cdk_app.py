"""CDK entry point (cdk.json): `make synth`, `make deploy STAGE=prod`.

Not named app.py: Chalice imports the API's own `app` module while packaging it.
"""

from __future__ import annotations

from loyalty_infra.application import build_app

build_app().synth()
