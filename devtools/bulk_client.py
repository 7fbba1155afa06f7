"""The HTTP client behind the ``loyalty`` command line (``python -m devtools.cli``), and its bulk
import and export.

It talks to the API over HTTP with a key, as a brand would (locally: the API of ``make run``;
deployed: the stage's endpoint), so it needs nothing but the URL and the key. ``Client.json``
sends one JSON request; ``Client.every`` follows a paginated list. Developer tooling
(``requests``, ``rich``), not part of the Lambda bundle.

Import: a file over the API's limit (5 MB) is sent as several imports of whole rows, each
with the header; the client follows them to the end (polling their records) and reports row
errors with the row numbers of *the file*. Export: follows ``Next-Cursor`` from page to page,
writing one CSV (the header once).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from chalicelib.domain.csv_cells import escape_cell

#: Bytes of one import request: under the API's 5 000 000, with room for a header row.
DEFAULT_PART_BYTES = 4_900_000


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        import json

        return json.loads(self.text)


class Transport(Protocol):
    def __call__(self, method: str, path: str, *, headers: dict[str, str], body: bytes | None) -> HttpReply: ...


class RequestsTransport:
    """Real HTTP: ``base_url`` is the API's root (``http://127.0.0.1:8000`` or a stage's
    ``https://.../v1``); paths are sent relative to it without their ``/v1`` if it has one."""

    def __init__(self, base_url: str, *, timeout: float = 60.0) -> None:
        import requests

        self._base = base_url.rstrip("/")
        self._strip_v1 = self._base.endswith("/v1")
        self._session = requests.Session()
        self._timeout = timeout

    def __call__(self, method: str, path: str, *, headers: dict[str, str], body: bytes | None) -> HttpReply:
        import requests

        if self._strip_v1:
            path = path.removeprefix("/v1")
        try:
            response = self._session.request(
                method, self._base + path, headers=headers, data=body, timeout=self._timeout
            )
        except requests.ConnectionError as error:
            reason = "connection refused" if "refused" in str(error).lower() else "no connection"
            raise ApiUnreachable(f"cannot reach the API at {self._base} ({reason})") from None
        except requests.Timeout:
            raise ApiUnreachable(f"the API at {self._base} did not answer within {self._timeout:g} s") from None
        return HttpReply(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.text)


class ApiUnreachable(Exception):
    """No answer at all: nothing listens at the URL, or it did not answer in time."""


class ApiError(Exception):
    """The API answered an error: ``str()`` is one line, ``<status> <code>: <message>``."""

    def __init__(self, reply: HttpReply) -> None:
        self.code = ""
        try:
            error = reply.json()["error"]
            self.code = str(error["code"])
            text = f"{reply.status} {self.code}: {error['message']}"
            self.details = error.get("details") or {}
        except (ValueError, KeyError, TypeError):
            first_line = reply.text.strip().splitlines()[0][:200] if reply.text.strip() else "no body"
            text, self.details = f"{reply.status}: {first_line}", {}
        super().__init__(text)
        self.status = reply.status


class Client:
    def __init__(self, transport: Transport, key: str) -> None:
        self._transport = transport
        self._key = key

    def call(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        media: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpReply:
        """The reply of a 2xx; ApiError otherwise. Throttling and 503s are retried with the
        same headers (an Idempotency-Key among them makes the retry safe)."""
        headers = {"Authorization": f"Bearer {self._key}", **(headers or {})}
        if media:
            headers["Content-Type"] = media
        for attempt in range(5):
            reply = self._transport(method, path, headers=headers, body=body)
            if reply.status not in (429, 503, 504):
                break
            time.sleep(float(reply.headers.get("retry-after", "1")) * (attempt + 1))
        if reply.status >= 400:
            raise ApiError(reply)
        return reply

    def json(self, method: str, path: str, body: Any = None, *, idempotency_key: str | None = None) -> Any:
        """A JSON request (``body`` None: none sent) and its parsed answer (None when empty)."""
        import json

        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        payload = json.dumps(body).encode() if body is not None else None
        reply = self.call(method, path, body=payload, media="application/json" if payload else None, headers=headers)
        return reply.json() if reply.text else None

    def every(self, path: str) -> Iterator[Any]:
        """Every item of a paginated JSON list (``data``, ``next_cursor``), page after page."""
        return _pages(self, path, json_pages=True)

    def first(self, path: str, limit: int) -> list[Any]:
        """The first ``limit`` items of a paginated JSON list (0: every item), in pages of at most 100."""
        page = min(limit, 100) if limit else 100
        found = []
        for item in self.every(f"{path}{'&' if '?' in path else '?'}limit={page}"):
            found.append(item)
            if limit and len(found) >= limit:
                break
        return found


# --- import ----------------------------------------------------------------------------------------


@dataclass
class Part:
    """One import request: whole rows of the file, with the header; ``file_rows[i]`` is the file's
    row number (header = 1) of the part's row ``i + 2`` (empty: the part is the file itself)."""

    body: bytes
    file_rows: list[int]
    import_id: str | None = None
    record: dict[str, Any] = field(default_factory=dict)

    def file_row(self, row: int) -> int:
        index = row - 2
        return self.file_rows[index] if self.file_rows and 0 <= index < len(self.file_rows) else row


def split(data: bytes, *, part_bytes: int = DEFAULT_PART_BYTES) -> list[Part]:
    """The file in parts of at most ``part_bytes`` (whole rows, each part with the header). A
    file that fits is sent as it is, byte for byte."""
    text = data.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return [Part(data, [])]
    records: list[tuple[int, list[str]]] = []
    number = 1
    for record in reader:
        number += 1
        if record and any(value.strip() for value in record):
            records.append((number, record))
    if len(data) <= part_bytes:
        return [Part(data, [])]  # sent as it is: the API numbers its rows as the file does
    head = _line(header)
    parts: list[Part] = []
    body = io.BytesIO()
    rows: list[int] = []
    body.write(head)
    for number, record in records:
        line = _line(record)
        if rows and body.tell() + len(line) > part_bytes:
            parts.append(Part(body.getvalue(), rows))
            body, rows = io.BytesIO(), []
            body.write(head)
        body.write(line)
        rows.append(number)
    parts.append(Part(body.getvalue(), rows))
    return parts


def _line(record: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(record)
    return out.getvalue().encode()


@dataclass(frozen=True)
class ImportReport:
    parts: list[Part]
    errors: list[dict[str, Any]]

    @property
    def totals(self) -> dict[str, int]:
        keys = ("total", "processed", "imported", "skipped", "failed")
        return {k: sum(int(p.record.get("counts", {}).get(k, 0)) for p in self.parts) for k in keys}

    @property
    def statuses(self) -> list[str]:
        return [str(p.record.get("status")) for p in self.parts]


def import_members(
    client: Client,
    data: bytes,
    *,
    filename: str | None = None,
    part_bytes: int = DEFAULT_PART_BYTES,
    poll_seconds: float = 1.0,
    on_progress: Callable[[int, int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ImportReport:
    """Submit the file (in parts if needed), follow every import to its end, collect the rows
    not imported (numbered as in the file). ApiError if the API refuses a part (a bad header:
    nothing of that part is written)."""
    parts = split(data, part_bytes=part_bytes)
    for part in parts:
        reply = client.call("POST", "/v1/imports", body=part.body, media="text/csv; charset=utf-8")
        part.record = reply.json()
        part.import_id = part.record["id"]
    total = sum(int(p.record["counts"]["total"]) for p in parts)
    while True:
        for part in parts:
            if part.record.get("status") not in ("completed", "failed"):
                part.record = client.call("GET", f"/v1/imports/{part.import_id}").json()
        processed = sum(int(p.record["counts"]["processed"]) for p in parts)
        if on_progress is not None:
            on_progress(processed, total)
        if all(p.record.get("status") in ("completed", "failed") for p in parts):
            break
        sleep(poll_seconds)
    errors = []
    for part in parts:
        if not part.record["error_count"]:
            continue
        for issue in _pages(client, f"/v1/imports/{part.import_id}/errors?limit=100", json_pages=True):
            errors.append({**issue, "row": part.file_row(int(issue["row"])), "import_id": part.import_id})
    return ImportReport(parts, errors)


def _pages(client: Client, path: str, *, json_pages: bool) -> Iterator[Any]:
    cursor = None
    separator = "&" if "?" in path else "?"
    while True:
        reply = client.call("GET", path + (f"{separator}cursor={quote(cursor)}" if cursor else ""))
        if json_pages:
            body = reply.json()
            yield from body["data"]
            cursor = body.get("next_cursor")
        else:
            yield reply
            cursor = reply.headers.get("next-cursor")
        if not cursor:
            return


def write_errors(errors: list[dict[str, Any]], out: Path) -> None:
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "external_id", "outcome", "code", "message", "import_id"])
        for e in errors:
            text = (e.get("external_id") or "", e["outcome"], e["code"], e["message"], e["import_id"])
            writer.writerow([e["row"], *(escape_cell(str(value)) for value in text)])


# --- export -----------------------------------------------------------------------------------------


def export_csv(client: Client, path: str, out: Path, *, on_rows: Callable[[int], None] | None = None) -> int:
    """Follow the export's pages into one CSV file (the header once); returns the rows written.
    The file appears only once complete (written beside it, then renamed)."""
    partial = out.with_name(out.name + ".part")
    rows = 0
    with partial.open("w", newline="", encoding="utf-8") as handle:
        for index, reply in enumerate(_pages(client, path, json_pages=False)):
            text = reply.text
            if index:
                text = text.split("\r\n", 1)[1] if "\r\n" in text else ""
            handle.write(text)
            rows += sum(1 for _ in csv.reader(io.StringIO(text, newline=""))) - (0 if index else 1)
            if on_rows is not None:
                on_rows(rows)
    partial.replace(out)
    return rows
