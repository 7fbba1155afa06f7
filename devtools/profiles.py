"""Where the ``loyalty`` command finds the API and its key: flags, the environment, or a profile.

A profile names an API URL and a key; profiles live in one TOML file,
``$XDG_CONFIG_HOME/loyalty/profiles.toml`` (``~/.config/loyalty/profiles.toml``; another file
with ``LOYALTY_PROFILES_FILE``), readable by its owner only since it holds keys::

    current = "local"

    [profiles.local]
    api = "http://127.0.0.1:8000"
    key = "lk_..."

Each of the URL and the key is taken from the first of: the flag (``--api``, ``--key``), the
environment (``LOYALTY_API_URL``, ``LOYALTY_API_KEY``), the profile (``--profile``,
``LOYALTY_PROFILE``, else the file's ``current``), and for the URL the API of ``make run``.

Standard library only.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_API = "http://127.0.0.1:8000"
API_ENV = "LOYALTY_API_URL"
KEY_ENV = "LOYALTY_API_KEY"
PROFILE_ENV = "LOYALTY_PROFILE"
FILE_ENV = "LOYALTY_PROFILES_FILE"


class ProfileError(Exception):
    """A profile that cannot be used: unknown, or a file that cannot be read."""


@dataclass(frozen=True)
class Profile:
    name: str
    api: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class Target:
    """The API to call and the key to call it with; ``key`` None: no key was found."""

    api: str
    key: str | None
    profile: str | None


def profiles_file(environ: Mapping[str, str] = os.environ) -> Path:
    if environ.get(FILE_ENV):
        return Path(environ[FILE_ENV]).expanduser()
    config = Path(environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "loyalty" / "profiles.toml"


class ProfileStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> tuple[str | None, dict[str, Profile]]:
        if not self.path.exists():
            return None, {}
        try:
            document = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise ProfileError(f"cannot read the profiles in {self.path}: {error}") from None
        sections = document.get("profiles", {})
        current = document.get("current")
        if not isinstance(sections, dict) or not all(isinstance(v, dict) for v in sections.values()):
            raise ProfileError(f"cannot read the profiles in {self.path}: [profiles.NAME] tables expected")
        profiles = {
            name: Profile(name, _text(values.get("api")), _text(values.get("key"))) for name, values in sections.items()
        }
        return (current if isinstance(current, str) else None), profiles

    def current(self) -> str | None:
        return self._read()[0]

    def list(self) -> list[Profile]:
        return sorted(self._read()[1].values(), key=lambda p: p.name)

    def get(self, name: str) -> Profile:
        profiles = self._read()[1]
        if name not in profiles:
            known = ", ".join(sorted(profiles)) or "none yet: `loyalty profile set NAME --api URL --key KEY`"
            raise ProfileError(f"no profile {name!r} in {self.path} (profiles: {known})")
        return profiles[name]

    def set(self, profile: Profile, *, make_current: bool) -> None:
        current, profiles = self._read()
        old = profiles.get(profile.name)
        profiles[profile.name] = Profile(
            profile.name, profile.api or (old.api if old else None), profile.key or (old.key if old else None)
        )
        self._write(profile.name if make_current or current is None else current, profiles)

    def use(self, name: str) -> None:
        self.get(name)
        self._write(name, self._read()[1])

    def remove(self, name: str) -> None:
        self.get(name)
        current, profiles = self._read()
        del profiles[name]
        self._write(None if current == name else current, profiles)

    def _write(self, current: str | None, profiles: Mapping[str, Profile]) -> None:
        lines = [f"current = {json.dumps(current)}", ""] if current else []
        for name, profile in sorted(profiles.items()):
            lines.append(f"[profiles.{json.dumps(name)}]")
            lines += [
                f"{field} = {json.dumps(value)}"
                for field, value in (("api", profile.api), ("key", profile.key))
                if value
            ]
            lines.append("")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".part")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines))
        partial.replace(self.path)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def resolve(
    api: str | None,
    key: str | None,
    profile: str | None,
    *,
    environ: Mapping[str, str] = os.environ,
    store: ProfileStore | None = None,
) -> Target:
    """The URL and key to use (flags first; see the module's docstring for the order). A
    profile named by ``--profile`` or ``LOYALTY_PROFILE`` must exist."""
    api = api or environ.get(API_ENV) or None
    key = key or environ.get(KEY_ENV) or None
    named = profile or environ.get(PROFILE_ENV) or None
    chosen = None
    if named or not (api and key):
        store = store or ProfileStore(profiles_file(environ))
        name = named or store.current()
        chosen = store.get(name) if name else None
    return Target(
        api or (chosen.api if chosen else None) or DEFAULT_API,
        key or (chosen.key if chosen else None),
        chosen.name if chosen else None,
    )


def masked(key: str | None) -> str:
    if not key:
        return "-"
    return key[:6] + "..." + key[-4:] if len(key) > 14 else "***"
