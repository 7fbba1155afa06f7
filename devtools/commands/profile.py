"""``loyalty profile``: named API URLs and keys, so that commands need neither flags nor
environment variables (see ``devtools.profiles``)."""

from __future__ import annotations

from typing import Annotated

import typer

from devtools.commands.common import CliError, console, table
from devtools.profiles import Profile, ProfileStore, masked, profiles_file

app = typer.Typer(help="Profiles: an API URL and a key, under a name.")

Name = Annotated[str, typer.Argument(metavar="NAME", help="The profile's name, e.g. local or prod-acme.")]


def _store() -> ProfileStore:
    return ProfileStore(profiles_file())


@app.command("set")
def set_profile(
    name: Name,
    api: Annotated[str | None, typer.Option("--api", metavar="URL", help="The API's root.")] = None,
    key: Annotated[str | None, typer.Option("--key", metavar="KEY", help="The API key.")] = None,
    use: Annotated[bool, typer.Option("--use", help="Make it the current profile.")] = False,
) -> None:
    """Create or change a profile (the first one becomes the current one)."""
    if not (api or key):
        raise CliError("give --api, --key or both")
    store = _store()
    store.set(Profile(name, api, key), make_current=use)
    console.print(f"profile {name} saved in {store.path}" + (" (current)" if store.current() == name else ""))


@app.command("use")
def use_profile(name: Name) -> None:
    """Make NAME the current profile."""
    _store().use(name)
    console.print(f"profile {name} is the current one", markup=False)


@app.command("list")
def list_profiles() -> None:
    """The profiles (keys masked); * marks the current one."""
    store = _store()
    current = store.current()
    rows = [
        {"": "*" if p.name == current else "", "name": p.name, "api": p.api, "key": masked(p.key)} for p in store.list()
    ]
    table(rows, ("", "name", "api", "key"), title=str(store.path))


@app.command("remove")
def remove_profile(name: Name) -> None:
    """Forget a profile."""
    _store().remove(name)
    console.print(f"profile {name} removed", markup=False)
