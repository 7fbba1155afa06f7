"""Bulk import of members with opening balances (and tiers) from CSV.

``submit`` reads the whole file first: an unreadable file or a bad header is refused (400)
before anything is written. The rows are then stored in chunks (at most ``CHUNK_ROWS`` rows
and ``CHUNK_BYTES`` of encoded rows each, well inside DynamoDB's 400 KB per item) behind
the import's own record, ``queued``.

A job unit lands the chunks in order (deployed: a message on the jobs queue, continued
message after message; locally: in-process, from the ``resume-imports`` schedule). It holds
a lease on the import while it works, and its checkpoint is ``next_chunk``: a chunk's
result (its counts and row issues) is written in the same transaction that moves the
checkpoint and adds the counts, only if that chunk has no result yet, so counts are added
exactly once however often a chunk is run.

**Every row once, and whole.** A row lands in one DynamoDB transaction: the member's
profile, the link of its ``external_id`` (written only if absent: the idempotency anchor),
its balance, and, for an opening balance above zero, an ``adjust`` ledger entry under the
key ``import:<external id>`` (a shape the ledger reserves: no client can send it), with its
lot under an expiry policy, and the tier with its review entry and ``tier.changed`` event.
Either all of it is written or nothing. A rerun (a crash mid-chunk, a redelivered message,
the same file imported twice) finds the link: a member this import created counts as
imported, any other member with that external id is *skipped* (``member_exists``, never
changed). Rows are numbered as a spreadsheet shows them: the header is row 1.

A cell escaped against spreadsheet formulas (a leading quote, as the exports write
``'=1+2``: ``chalicelib.domain.csv_cells``) is read as the value it escapes, so an exported
row imports as it was.
"""

from __future__ import annotations

import builtins
import contextlib
import csv
import io
import json
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.domain.audit import SYSTEM, Actor, AuditAction, AuditEntry, Auditor, Channel
from chalicelib.domain.backoff import backoff_seconds
from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.consents import Consent, ConsentChange, new_consent_change
from chalicelib.domain.credits import opening_credit
from chalicelib.domain.csv_cells import unescape_cell
from chalicelib.domain.errors import InvalidRequest, NotFound, RetryLater, TransientStoreError
from chalicelib.domain.ids import IMPORT_ID_PATTERN, new_import_id, new_member_id
from chalicelib.domain.members import Member
from chalicelib.domain.movement_requests import MAX_POINTS_PER_MOVEMENT

if TYPE_CHECKING:
    from chalicelib.domain.entries import Balance, LedgerEntry
    from chalicelib.domain.expiry import LotChanges
    from chalicelib.domain.ports import Page
    from chalicelib.domain.program import Program, ProgramService
    from chalicelib.domain.tiers import TierProgram, TierService, TierWrite

#: The columns a file may have, in this order when the platform writes one (exports).
COLUMNS = ("external_id", "email", "name", "birthday", "marketing_consent", "points", "tier")
REQUIRED_COLUMNS = ("external_id",)
#: Rows per chunk, and bytes of encoded rows per chunk (a chunk is one item: 400 KB at most).
CHUNK_ROWS = 500
CHUNK_BYTES = 256 * 1024
#: Rows per import (the request body limit bounds it too).
MAX_ROWS = 100_000
#: Longer fields are cut to this length plus one when stored (every column is shorter).
MAX_FIELD_CHARS = 1024
#: Failed attempts at running an import (not row failures) before it is marked ``failed``.
MAX_ATTEMPTS = 5
#: How long the rows of an import that never completes (the file as sent: personal data) are
#: kept: the table's TTL deletes them after this. A completed import's rows are deleted at once.
CHUNK_RETENTION = timedelta(days=30)
#: Rows written per DynamoDB transaction (a row is at most 8 items; a transaction takes 100).
ROWS_PER_TRANSACTION = 12
#: The ledger key of an opening balance: one per external id of the tenant, ever.
LEDGER_KEY_PREFIX = "import:"

EXTERNAL_ID_PATTERN = re.compile(r"^[\x21-\x7e]{1,128}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_WHOLE_NUMBER = re.compile(r"^[0-9]+$")
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})
_EARLIEST_BIRTHDAY = date(1900, 1, 1)


class ImportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    #: The import itself kept failing (not its rows): it is no longer resumed.
    FAILED = "failed"


class RowOutcome(StrEnum):
    IMPORTED = "imported"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class StoredRow:
    """One record of the file as stored in its chunk (fields in the header's order)."""

    number: int
    fields: tuple[str, ...]
    #: The row whose external id this row repeats (0: none): only the first one is imported.
    duplicate_of: int = 0
    #: When the record does not have one field per column: how many it has (0: it does).
    field_count: int = 0

    def to_json(self) -> list[Any]:
        return [self.number, self.duplicate_of, self.field_count, *self.fields]

    @classmethod
    def from_json(cls, data: list[Any]) -> StoredRow:
        number, duplicate_of, field_count, *fields = data
        return cls(int(number), tuple(str(f) for f in fields), int(duplicate_of), int(field_count))


@dataclass(frozen=True)
class Chunk:
    index: int
    rows: tuple[StoredRow, ...]


def encode_rows(rows: Sequence[StoredRow]) -> str:
    return json.dumps([row.to_json() for row in rows], ensure_ascii=False, separators=(",", ":"))


def decode_rows(text: str) -> tuple[StoredRow, ...]:
    return tuple(StoredRow.from_json(row) for row in json.loads(text))


@dataclass(frozen=True)
class ParsedCsv:
    columns: tuple[str, ...]
    chunks: tuple[Chunk, ...]
    total_rows: int


@dataclass(frozen=True)
class ImportJob:
    import_id: str
    status: ImportStatus
    columns: tuple[str, ...]
    total_rows: int
    chunk_count: int
    created_at: datetime
    updated_at: datetime
    filename: str | None = None
    actor_key_id: str | None = None
    #: The checkpoint: chunks before it have their result recorded.
    next_chunk: int = 0
    imported: int = 0
    skipped: int = 0
    failed: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    #: Failed attempts at running the import (a crash, storage failing), and the last error.
    attempts: int = 0
    last_error: str | None = None

    @property
    def processed(self) -> int:
        return self.imported + self.skipped + self.failed

    @property
    def finished(self) -> bool:
        return self.status in (ImportStatus.COMPLETED, ImportStatus.FAILED)


@dataclass(frozen=True)
class RowIssue:
    """A row that was not imported: ``failed`` (invalid) or ``skipped`` (the member exists)."""

    row: int
    external_id: str | None
    outcome: RowOutcome
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChunkResult:
    index: int
    imported: int
    skipped: int
    failed: int
    issues: tuple[RowIssue, ...]


@dataclass(frozen=True)
class RunOutcome:
    job: ImportJob
    #: False when another worker holds the import, or it is finished.
    claimed: bool
    #: Chunks landed by this run.
    chunks: int = 0

    @property
    def more(self) -> bool:
        """Whether the import still has chunks to land (the caller continues it)."""
        return self.claimed and not self.job.finished


@dataclass(frozen=True)
class ImportRow:
    """A valid row: what the member and its opening balance are made of."""

    external_id: str
    email: str | None
    name: str | None
    birthday: date | None
    marketing_consent: bool
    points: int
    tier: str | None


@dataclass(frozen=True)
class Landing:
    """A valid row's writes: all of them land together, or none."""

    row: int
    member: Member
    balance: Balance
    entry: LedgerEntry | None
    lots: LotChanges
    tier: TierWrite | None
    #: The member's marketing consent given in the file (recorded in its history), if any.
    consent: ConsentChange | None = None


class ExternalIdTaken(Exception):
    """The external id is linked to a member already: ``import_id`` is the import that
    created it (None: enrolled otherwise)."""

    def __init__(self, member_id: str, import_id: str | None) -> None:
        super().__init__(member_id)
        self.member_id = member_id
        self.import_id = import_id


class ImportStore(Protocol):
    def create(self, job: ImportJob, chunks: Sequence[Chunk], audit: AuditEntry | None = None) -> None:
        """Store the chunks, then the import (so an import is never seen without its rows) with ``audit``."""

    def get(self, import_id: str) -> ImportJob | None: ...
    def list(self, *, limit: int, cursor: str | None) -> Page[ImportJob]:
        """Newest first."""

    def open_imports(self) -> builtins.list[str]:
        """Ids of imports neither completed nor failed, through a sparse index."""

    def claim(self, import_id: str, *, owner: str, now: datetime, until: datetime) -> ImportJob | None:
        """Take the lease (free or expired) of an unfinished import and mark it running;
        None when another worker holds it or it is finished."""

    def chunk(self, import_id: str, index: int) -> Chunk: ...
    def finish_chunk(
        self, import_id: str, result: ChunkResult, *, now: datetime, lease_until: datetime | None = None
    ) -> bool:
        """Record the chunk's result, add its counts and move the checkpoint past it (and the
        lease to ``lease_until``), in one transaction, only if the chunk has no result yet:
        False when it had one."""

    def complete(self, import_id: str, *, now: datetime) -> ImportJob: ...
    def release(self, import_id: str, *, owner: str, now: datetime, error: str | None, give_up: bool) -> None:
        """Give the lease back; with ``error``, count a failed attempt (``give_up``: mark failed)."""

    def discard_chunks(self, import_id: str, chunk_count: int) -> None:
        """Delete the rows of a completed import (its counts and row issues stay)."""

    def erased_external_ids(self, external_ids: Sequence[str]) -> set[str]:
        """Those of ``external_ids`` that belonged to a member erased since (chalicelib.domain.privacy)."""

    def land(self, import_id: str, landings: Sequence[Landing]) -> dict[int, ExternalIdTaken]:
        """The rows in one transaction, each only if its external id is free: the rows whose
        external id is taken are left out (returned by row number) and the others written."""

    def issues(self, import_id: str, *, limit: int, cursor: str | None) -> Page[RowIssue]:
        """Rows not imported, in row order."""


class ImportQueue(Protocol):
    def submit(self, import_id: str) -> None:
        """Ask for the import to be run soon (at least once)."""


# --- reading the file ------------------------------------------------------------------------


def parse_csv(data: bytes | str, *, max_rows: int = MAX_ROWS) -> ParsedCsv:
    """The file's columns and its rows in chunks; InvalidRequest (nothing is written) for a
    file that is not UTF-8 CSV, a bad header, no rows or too many. Row-level problems are
    not refusals: they are reported per row when the import runs."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise InvalidRequest.for_fields(
                "the CSV is not UTF-8 text", ("body", f"invalid UTF-8 at byte {error.start}", "csv_encoding")
            ) from None
    else:
        text = data.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise _unreadable(1, error) from None
    if header is None or not any(name.strip() for name in header):
        raise InvalidRequest.for_fields(
            "the CSV is empty: its first row must name the columns",
            ("header", f"expected a header naming some of {', '.join(COLUMNS)}", "missing"),
        )
    columns = _check_header(header)
    rows = _read_rows(reader, columns, max_rows)
    if not rows:
        raise InvalidRequest.for_fields(
            "the CSV has a header but no rows", ("body", "no rows after the header", "missing")
        )
    return ParsedCsv(columns=columns, chunks=_chunked(rows), total_rows=len(rows))


def _check_header(header: list[str]) -> tuple[str, ...]:
    columns = tuple(name.strip().lower() for name in header)
    problems: list[tuple[str, str, str]] = []
    for index, name in enumerate(columns):
        if name not in COLUMNS:
            problems.append(
                (f"header.{index}", f"unknown column {header[index]!r} (columns: {', '.join(COLUMNS)})", "csv_column")
            )
        elif columns.index(name) != index:
            problems.append((f"header.{index}", f"column {name!r} appears more than once", "csv_duplicate_column"))
    for required in REQUIRED_COLUMNS:
        if required not in columns:
            problems.append(("header", f"the {required} column is required", "missing"))
    if problems:
        raise InvalidRequest(
            "the CSV header is invalid: nothing was imported",
            details={
                "fields": [{"path": p, "message": m, "type": t} for p, m, t in problems],
                "columns": list(COLUMNS),
                "required_columns": list(REQUIRED_COLUMNS),
            },
        )
    return columns


def _read_rows(reader: Any, columns: tuple[str, ...], max_rows: int) -> list[StoredRow]:
    key = columns.index("external_id")
    first_row_of: dict[str, int] = {}
    rows: list[StoredRow] = []
    number = 1
    while True:
        try:
            record = next(reader, None)
        except csv.Error as error:
            raise _unreadable(number + 1, error) from None
        if record is None:
            return rows
        number += 1
        if not record or (len(record) == 1 and not record[0].strip() and len(columns) > 1):
            continue  # a blank line
        if len(rows) >= max_rows:
            raise InvalidRequest.for_fields(
                f"an import takes at most {max_rows} rows; split the file",
                ("body", f"more than {max_rows} rows", "too_long"),
            )
        fields = tuple(unescape_cell(value)[: MAX_FIELD_CHARS + 1] for value in record[: len(columns)])
        if len(record) != len(columns):
            rows.append(StoredRow(number, fields, field_count=len(record)))
            continue
        external_id = fields[key].strip()
        duplicate_of = first_row_of.get(external_id, 0) if external_id else 0
        if external_id and not duplicate_of:
            first_row_of[external_id] = number
        rows.append(StoredRow(number, fields, duplicate_of=duplicate_of))


def _unreadable(row: int, error: csv.Error) -> InvalidRequest:
    return InvalidRequest.for_fields(
        f"the CSV cannot be read at row {row}: {error}; nothing was imported", ("body", str(error), "csv_syntax")
    )


def _chunked(rows: list[StoredRow]) -> tuple[Chunk, ...]:
    chunks: list[Chunk] = []
    current: list[StoredRow] = []
    size = 0
    for row in rows:
        encoded = len(json.dumps(row.to_json(), ensure_ascii=False).encode()) + 1
        if current and (len(current) >= CHUNK_ROWS or size + encoded > CHUNK_BYTES):
            chunks.append(Chunk(len(chunks), tuple(current)))
            current, size = [], 0
        current.append(row)
        size += encoded
    if current:
        chunks.append(Chunk(len(chunks), tuple(current)))
    return tuple(chunks)


# --- one row -----------------------------------------------------------------------------------


def validate_row(
    columns: tuple[str, ...], fields: tuple[str, ...], today: date
) -> tuple[ImportRow | None, list[tuple[str, str, str]]]:
    """The row, or its problems as (code, column, message), the API's own rules for members."""
    values = {name: value.strip() for name, value in zip(columns, fields, strict=False)}
    problems: list[tuple[str, str, str]] = []
    external_id = values.get("external_id", "")
    if not EXTERNAL_ID_PATTERN.fullmatch(external_id):
        problems.append(("invalid_external_id", "external_id", "required: 1-128 visible ASCII characters, no spaces"))
    email = values.get("email") or None
    if email is not None:
        email = email.lower()
        if not (3 <= len(email) <= 254 and EMAIL_PATTERN.fullmatch(email)):
            problems.append(("invalid_email", "email", "not an email address"))
    name = values.get("name") or None
    if name is not None and len(name) > 200:
        problems.append(("invalid_name", "name", "at most 200 characters"))
    birthday = None
    if values.get("birthday"):
        try:
            if not _ISO_DATE.fullmatch(values["birthday"]):
                raise ValueError
            birthday = date.fromisoformat(values["birthday"])
            if not _EARLIEST_BIRTHDAY <= birthday <= today:
                raise ValueError
        except ValueError:
            problems.append(("invalid_birthday", "birthday", "a date YYYY-MM-DD between 1900-01-01 and today"))
    consent_text = values.get("marketing_consent", "").lower()
    consent = consent_text in _TRUE
    if consent_text and consent_text not in _TRUE | _FALSE:
        problems.append(("invalid_marketing_consent", "marketing_consent", "true or false (also yes/no, 1/0)"))
    points = 0
    points_text = values.get("points", "")
    if points_text:
        if not _WHOLE_NUMBER.fullmatch(points_text) or int(points_text) > MAX_POINTS_PER_MOVEMENT:
            problems.append(
                ("invalid_points", "points", f"a whole number of points from 0 to {MAX_POINTS_PER_MOVEMENT}")
            )
        else:
            points = int(points_text)
    tier = values.get("tier") or None
    if problems:
        return None, problems
    return ImportRow(external_id, email, name, birthday, consent, points, tier), []


@dataclass(frozen=True)
class _ChunkContext:
    program: Program
    tiers: TierProgram | None
    today: date


@dataclass(frozen=True)
class _Landed:
    outcome: RowOutcome
    issue: RowIssue | None = None
    #: The member an imported row enrolled (now, or by an earlier attempt of the same import).
    member_id: str | None = None


# --- the service ---------------------------------------------------------------------------------


class ImportService:
    def __init__(
        self,
        store: ImportStore,
        program: ProgramService,
        tiers: TierService,
        *,
        queue: ImportQueue | None = None,
        timezone: str = "UTC",
        clock: Clock = utc_now,
        workers: int = 8,
        max_transient_failures: int = 6,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        auditor: Auditor | None = None,
        welcome: Callable[[str], object] | None = None,
    ) -> None:
        self._auditor = auditor or Auditor(SYSTEM, clock)
        self._store = store
        self._program = program
        self._tiers = tiers
        self._queue = queue
        self._timezone = timezone
        self._clock = clock
        self._workers = max(1, workers)
        self._max_transient_failures = max_transient_failures
        self._sleep = sleep
        self._monotonic = monotonic
        #: Called with each imported member's id (chalicelib.domain.welcome decides whether an
        #: imported member is welcomed; at most once per member, so a rerun is harmless).
        self._welcome = welcome

    # --- the API's side ------------------------------------------------------------------------

    def submit(self, data: bytes | str, *, filename: str | None = None, actor_key_id: str | None = None) -> ImportJob:
        parsed = parse_csv(data)
        now = self._clock()
        job = ImportJob(
            import_id=new_import_id(now),
            status=ImportStatus.QUEUED,
            columns=parsed.columns,
            total_rows=parsed.total_rows,
            chunk_count=len(parsed.chunks),
            created_at=now,
            updated_at=now,
            filename=filename,
            actor_key_id=actor_key_id,
        )
        # The rows stay out of the trail (they are members' personal data): the import names them.
        audit = self._auditor.entry(AuditAction.IMPORT_CREATED, "import", job.import_id, after=job, at=now)
        self._store.create(job, parsed.chunks, audit)
        if self._queue is not None:
            self._queue.submit(job.import_id)
        return job

    def get(self, import_id: str) -> ImportJob:
        found = self._store.get(import_id) if IMPORT_ID_PATTERN.fullmatch(import_id) else None
        if found is None:
            raise NotFound(f"import {import_id!r} not found")
        return found

    def list(self, *, limit: int, cursor: str | None) -> Page[ImportJob]:
        return self._store.list(limit=limit, cursor=cursor)

    def issues(self, import_id: str, *, limit: int, cursor: str | None) -> Page[RowIssue]:
        self.get(import_id)
        return self._store.issues(import_id, limit=limit, cursor=cursor)

    def open_imports(self) -> builtins.list[str]:
        return self._store.open_imports()

    # --- the job unit --------------------------------------------------------------------------

    def run(
        self,
        import_id: str,
        *,
        owner: str,
        budget_seconds: float | None = None,
        lease: timedelta = timedelta(minutes=2),
        on_chunk: Callable[[ImportJob], None] | None = None,
    ) -> RunOutcome:
        """Land the import's chunks from its checkpoint, until done or until ``budget_seconds``
        have passed (no new chunk is started after that; the caller continues it later)."""
        now = self._clock()
        job = self._store.claim(import_id, owner=owner, now=now, until=now + lease)
        if job is None:
            current = self._store.get(import_id)
            if current is None:
                raise NotFound(f"import {import_id!r} not found")
            return RunOutcome(current, claimed=False)
        started = self._monotonic()
        landed = 0
        try:
            while job.next_chunk < job.chunk_count:
                if budget_seconds is not None and landed and self._monotonic() - started >= budget_seconds:
                    break
                result = self._land_chunk(job, self._store.chunk(import_id, job.next_chunk))
                moment = self._clock()
                self._store.finish_chunk(import_id, result, now=moment, lease_until=moment + lease)
                landed += 1
                job = self.get(import_id)
                if on_chunk is not None:
                    on_chunk(job)
            if job.next_chunk >= job.chunk_count:
                job = self._store.complete(import_id, now=self._clock())
                self._store.discard_chunks(import_id, job.chunk_count)  # the rows (personal data) are done with
            else:
                self._store.release(import_id, owner=owner, now=self._clock(), error=None, give_up=False)
        except Exception as error:
            give_up = job.attempts + 1 >= MAX_ATTEMPTS
            with contextlib.suppress(Exception):  # the lease expires by itself; the original error matters more
                self._store.release(import_id, owner=owner, now=self._clock(), error=_describe(error), give_up=give_up)
            raise
        return RunOutcome(job, claimed=True, chunks=landed)

    def _land_chunk(self, job: ImportJob, chunk: Chunk) -> ChunkResult:
        now = self._clock()
        context = _ChunkContext(
            program=self._program.get(), tiers=self._tiers.in_force(now), today=now.astimezone(UTC).date()
        )
        results: dict[int, _Landed] = {}
        landings: list[Landing] = []
        erased = self._store.erased_external_ids(
            sorted({row.fields[job.columns.index("external_id")].strip() for row in chunk.rows if row.fields})
        )
        for row in chunk.rows:
            checked = self._prepare(job, row, context, erased)
            if isinstance(checked, Landing):
                landings.append(checked)
            else:
                results[row.number] = checked
        size = max(1, ROWS_PER_TRANSACTION)
        batches = [landings[start : start + size] for start in range(0, len(landings), size)]
        if self._workers == 1 or len(batches) <= 1:
            landed = [self._land_batch(job, batch) for batch in batches]
        else:
            with ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="import") as pool:
                landed = list(pool.map(lambda batch: self._land_batch(job, batch), batches))
        for outcome in landed:
            results.update(outcome)
        ordered = [results[row.number] for row in chunk.rows]
        if self._welcome is not None:
            for result in ordered:
                if result.outcome is RowOutcome.IMPORTED and result.member_id is not None:
                    self._welcome(result.member_id)
        return ChunkResult(
            index=chunk.index,
            imported=sum(1 for r in ordered if r.outcome is RowOutcome.IMPORTED),
            skipped=sum(1 for r in ordered if r.outcome is RowOutcome.SKIPPED),
            failed=sum(1 for r in ordered if r.outcome is RowOutcome.FAILED),
            issues=tuple(r.issue for r in ordered if r.issue is not None),
        )

    def _prepare(self, job: ImportJob, row: StoredRow, context: _ChunkContext, erased: set[str]) -> Landing | _Landed:
        """The row's writes, or its failure (nothing is written for an invalid row, nor for the
        external id of an erased member: an import does not bring an erased member back)."""
        columns = job.columns
        external_id = row.fields[columns.index("external_id")].strip() if row.fields else ""
        shown_id = external_id[:128] or None

        def failed(code: str, message: str, **details: Any) -> _Landed:
            issue = RowIssue(row.number, shown_id, RowOutcome.FAILED, code, message, details)
            return _Landed(RowOutcome.FAILED, issue)

        if row.field_count:
            return failed(
                "malformed_row",
                f"expected {len(columns)} fields (one per column), found {row.field_count}",
                expected=len(columns),
                found=row.field_count,
            )
        if row.duplicate_of:
            return failed(
                "duplicate_external_id",
                f"external_id {external_id!r} already appears in row {row.duplicate_of}: only that row is imported",
                first_row=row.duplicate_of,
            )
        if external_id and external_id in erased:
            return failed(
                "member_erased",
                f"external_id {external_id!r} belonged to a member erased at the brand's request: "
                "an import does not bring them back (enrol them anew through the API if they ask)",
            )
        parsed, problems = validate_row(columns, row.fields, context.today)
        if (
            parsed is not None
            and parsed.tier is not None
            and (context.tiers is None or context.tiers.tier(parsed.tier) is None)
        ):
            known = [t.name for t in context.tiers.tiers] if context.tiers is not None else []
            problems.append(("unknown_tier", "tier", f"not a tier of the tier program in force (tiers: {known})"))
        if problems or parsed is None:
            code, _, message = problems[0]
            fields = [{"path": column, "message": text, "type": kind} for kind, column, text in problems]
            return failed(code, f"{problems[0][1]}: {message}", fields=fields)
        return self._landing(job, row.number, parsed, context)

    def _landing(self, job: ImportJob, row: int, parsed: ImportRow, context: _ChunkContext) -> Landing:
        now = self._clock()
        member = Member(
            member_id=new_member_id(now),
            external_id=parsed.external_id,
            email=parsed.email,
            name=parsed.name,
            birthday=parsed.birthday,
            marketing_consent=parsed.marketing_consent,
            created_at=now,
            updated_at=now,
            imported=True,
        )
        source = Actor(job.actor_key_id, Channel.IMPORT) if job.actor_key_id else Actor("system", Channel.IMPORT)
        consent = (
            new_consent_change(member.member_id, Consent.MARKETING, True, None, now, source)
            if member.marketing_consent
            else None
        )
        opening = opening_credit(
            context.program,
            member.member_id,
            parsed.points,
            idempotency_key=f"{LEDGER_KEY_PREFIX}{parsed.external_id}",
            now=now,
            reason=f"opening balance (import {job.import_id}, row {row})",
            reference=job.import_id,
            metadata={"import_id": job.import_id, "row": str(row)},
            actor_key_id=job.actor_key_id,
            timezone=self._timezone,
        )
        balance, tier = opening.balance, None
        if parsed.tier is not None:
            balance, tier = self._tiers.imported(context.tiers, balance, parsed.tier, now)
        entry = replace(opening.entry, balance_after=balance) if opening.entry is not None else None
        return Landing(row, member, balance, entry, opening.lots, tier, consent)

    def _land_batch(self, job: ImportJob, batch: builtins.list[Landing]) -> dict[int, _Landed]:
        """Write the rows (one transaction; rows whose external id is taken are left out and the
        rest written), retrying storage that is busy."""
        for attempt in range(1, self._max_transient_failures + 1):
            try:
                taken = self._store.land(job.import_id, batch)
                break
            except TransientStoreError:
                if attempt == self._max_transient_failures:
                    raise RetryLater("storage is busy; the import resumes from its checkpoint") from None
                self._sleep(backoff_seconds(attempt, base=0.01, cap=0.2, jitter="none"))
        results: dict[int, _Landed] = {}
        for landing in batch:
            found = taken.get(landing.row)
            if found is None or found.import_id == job.import_id:
                # written now, or by an earlier attempt of this very import (a rerun)
                member_id = found.member_id if found is not None else landing.member.member_id
                results[landing.row] = _Landed(RowOutcome.IMPORTED, member_id=member_id)
                continue
            external_id = landing.member.external_id
            results[landing.row] = _Landed(
                RowOutcome.SKIPPED,
                RowIssue(
                    landing.row,
                    external_id,
                    RowOutcome.SKIPPED,
                    "member_exists",
                    f"a member with external_id {external_id!r} already exists; it was left unchanged",
                    {"member_id": found.member_id},
                ),
            )
        return results


def _describe(error: Exception) -> str:
    text = f"{type(error).__name__}: {error}"
    return text[:500]
