"""Where ``loyalty`` finds the API and its key: flags, then the environment, then a profile."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from devtools.profiles import DEFAULT_API, Profile, ProfileError, ProfileStore, masked, resolve


@pytest.fixture
def store(tmp_path: Path) -> ProfileStore:
    saved = ProfileStore(tmp_path / "loyalty" / "profiles.toml")
    saved.set(Profile("local", "http://127.0.0.1:8000", "lk_local_0123456789"), make_current=False)
    saved.set(Profile("prod", "https://api.example.com/v1", "lk_prod_0123456789"), make_current=False)
    return saved


def test_the_first_profile_saved_is_the_current_one_and_the_file_is_private(store: ProfileStore) -> None:
    assert store.current() == "local"
    assert [p.name for p in store.list()] == ["local", "prod"]
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600  # it holds keys


def test_flags_then_environment_then_profile_then_the_local_default(store: ProfileStore) -> None:
    # the current profile fills what neither flags nor the environment give
    found = resolve(None, None, None, environ={}, store=store)
    assert (found.api, found.key, found.profile) == ("http://127.0.0.1:8000", "lk_local_0123456789", "local")
    # a named profile, by flag or environment
    assert resolve(None, None, "prod", environ={}, store=store).key == "lk_prod_0123456789"
    assert resolve(None, None, None, environ={"LOYALTY_PROFILE": "prod"}, store=store).key == "lk_prod_0123456789"
    # the environment before the profile, the flag before the environment
    environ = {"LOYALTY_API_KEY": "lk_env", "LOYALTY_API_URL": "http://env:1"}
    assert resolve(None, None, "prod", environ=environ, store=store).key == "lk_env"
    assert resolve("http://flag:2", "lk_flag", None, environ=environ, store=store).api == "http://flag:2"
    # nothing at all: make run's API, no key
    empty = ProfileStore(store.path.with_name("none.toml"))
    nothing = resolve(None, None, None, environ={}, store=empty)
    assert (nothing.api, nothing.key) == (DEFAULT_API, None)


def test_use_set_and_remove(store: ProfileStore) -> None:
    store.use("prod")
    assert store.current() == "prod"
    store.set(Profile("prod", None, "lk_rotated_0123456789"), make_current=False)
    assert store.get("prod") == Profile("prod", "https://api.example.com/v1", "lk_rotated_0123456789")
    store.remove("prod")
    assert store.current() is None and [p.name for p in store.list()] == ["local"]


def test_an_unknown_profile_or_a_broken_file_is_one_line(store: ProfileStore) -> None:
    with pytest.raises(ProfileError, match=r"no profile 'staging' in .*profiles.toml \(profiles: local, prod\)"):
        resolve(None, None, "staging", environ={}, store=store)
    store.path.write_text("current = \n")
    with pytest.raises(ProfileError, match="cannot read the profiles in") as raised:
        store.current()
    assert "\n" not in str(raised.value)


def test_keys_are_masked_when_listed() -> None:
    assert masked("lk_live_abcdefghijklmnop") == "lk_liv...mnop"
    assert masked("short") == "***" and masked(None) == "-"
