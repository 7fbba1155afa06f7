"""The ``loyalty`` command's groups over the HTTP API; ``register`` adds them to the root.

Each module is one group (``tenants``, ``keys``, ``members``...), its commands thin: parse the
arguments, call the API through ``common.connect``, print the answer. They never import
``chalicelib``: what they know of the API is its routes and bodies.
"""

from __future__ import annotations

import typer

from devtools.commands import keys, members, points, profile, program, tenants, webhooks


def register(cli: typer.Typer) -> None:
    cli.add_typer(profile.app, name="profile")
    cli.add_typer(tenants.app, name="tenants")
    cli.add_typer(keys.app, name="keys")
    cli.add_typer(members.app, name="members")
    cli.add_typer(points.app, name="points")
    cli.add_typer(program.app, name="program")
    cli.add_typer(webhooks.app, name="webhooks")
