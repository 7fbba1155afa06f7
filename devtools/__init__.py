"""Developer tooling: the local command line (``python -m devtools.cli``), the bulk
import/export client behind it, and the local servers (``chalice local``, a serial moto
server) that ``make run`` and the tests start.

Chalice packages ``app.py``, ``chalicelib/`` and ``vendor/`` into the Lambda bundle, so
nothing here is deployed (``tests/infra/test_packaging.py`` opens the bundle to check).
These modules may import ``chalicelib``; nothing in ``chalicelib`` or ``app.py`` imports
them (``tests/unit/test_import_hygiene.py``). Their third-party tools (typer, rich, requests,
moto, chalice) are in ``requirements-dev.txt``; run by a Python without them, the entry
points print how to run them and exit 2 (``dependencies.py``).
"""
