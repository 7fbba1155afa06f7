"""The docs' commands, run as written: every `curl` of docs/quickstart.md, then of the guides that
go on from it, goes through the API (on both emulators), with the ids the `jq` lines pick from the
answers, and each succeeds."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from tests.support.http import OPERATOR_KEY, Api
from tests.support.receiver import webhook_environment

DOCS = Path(__file__).resolve().parents[2] / "docs"
#: The quick start, then the pages whose examples use its variables ($API, $KEY, $MEMBER...).
PAGES = tuple(DOCS / page for page in ("quickstart.md", "guides/earning.md", "guides/rewards.md", "guides/jobs.md"))
_SHELL_BLOCK = re.compile(r"```sh\n(.*?)```", re.S)
_JQ_LINE = re.compile(r"^(\w+)=\$\(jq -r (\S+) (\S+)\)$")
_VARIABLE = re.compile(r"\$(\w+)")


def shell_lines(page: Path) -> list[str]:
    """The commands of a page's shell blocks: continuation lines and quoted line breaks joined."""
    lines: list[str] = []
    for block in _SHELL_BLOCK.findall(page.read_text()):
        pending = ""
        for line in block.replace("\\\n", " ").splitlines():
            pending = f"{pending} {line.strip()}" if pending else line.strip()
            if pending.count("'") % 2:
                continue  # a single-quoted body goes on on the next line
            command = pending.split("  #", 1)[0].strip()
            pending = ""
            if command:
                lines.append(command)
    return lines


def _jq(document: Any, expression: str) -> str:
    for name in expression.strip(".").split("."):
        document = document[name]
    return str(document)


def _curl(words: list[str]) -> tuple[str, str, dict[str, str], str | None]:
    method, url, headers, body = "GET", "", {}, None
    words = iter(words[1:])
    for word in words:
        if word == "-X":
            method = next(words)
        elif word == "-H":
            name, value = next(words).split(":", 1)
            headers[name.strip()] = value.strip()
        elif word == "-d":
            body = next(words)
        elif not word.startswith("-"):
            url = word
    return method, url, headers, body


@pytest.fixture
def local(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, api: Api) -> Api:
    """As under `make run`: webhook URLs may be plain http to loopback, secrets sealed by a local KMS."""
    webhook_environment(request, monkeypatch, webhooks_local_mode="true")
    return api


def test_the_docs_commands_run_as_written(local: Api) -> None:
    api = local
    # Given the page's variables: the API's base path and the operator key
    variables = {"API": "/v1", "OP": OPERATOR_KEY}
    files: dict[str, Any] = {}
    replies = []
    for line in [line for page in PAGES for line in shell_lines(page)]:
        if match := _JQ_LINE.match(line):
            name, expression, file = match.groups()
            variables[name] = _jq(files[file], expression)
            continue
        if not line.startswith("curl "):
            continue  # assignments of the page's own variables (API=..., OP=...)
        command, _, tee = line.partition(" | tee ")
        words = shlex.split(_VARIABLE.sub(lambda m: variables[m.group(1)], command))
        method, url, headers, body = _curl(words)
        # When the command is sent as written
        response = api.client.http.request(method, url, headers=headers, body=(body or "").encode())
        reply = json.loads(response.body) if response.body else None
        # Then it succeeds
        assert 200 <= response.status_code < 300, (line, response.status_code, reply)
        replies.append((method, url, reply))
        if tee:
            files[tee.strip()] = reply
    # And the story the page tells holds: 625 points earned, 300 spent on the coupon, Silver reached
    balance = next(reply for method, url, reply in replies if url.endswith("/balance"))
    assert balance["available"] == 325
    assert balance["tier"] == "silver"
    assert len(replies) >= 20
