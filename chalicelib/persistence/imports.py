"""Bulk imports in the tenant's own table.

    pk                            sk              gsi1 / gsi2                      what
    IMPORT#<import>               #IMPORT         IMPORTS/<id>; IMPORTS#OPEN/<id>  the import, checkpoint, counts, lease
    IMPORTCHUNK#<import>#<index>  #CHUNK          -                                a chunk of rows (a partition each)
    IMPORT#<import>               RESULT#<index>  -                                a landed chunk's counts, row issues

A row lands through ``MemberRepository.create_with_opening`` (members and the ledger own
those items); this module keeps the import's own records.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.errors import InvalidRequest, TransientStoreError
from chalicelib.domain.imports import (
    Chunk,
    ChunkResult,
    ExternalIdTaken,
    ImportJob,
    ImportStatus,
    Landing,
    RowIssue,
    RowOutcome,
    decode_rows,
    encode_rows,
)
from chalicelib.domain.ports import Page
from chalicelib.persistence.audit import audited_transaction
from chalicelib.persistence.errors import (
    RETRYABLE_CANCELLATIONS,
    cancellation_codes,
    response_code,
    translate_transient,
)
from chalicelib.persistence.members import MemberRepository
from chalicelib.persistence.pagination import decode_cursor, encode_cursor, paginate
from chalicelib.persistence.quotas import GuardedTransactWrite

if TYPE_CHECKING:
    from chalicelib.persistence.factory import TenantModels
    from chalicelib.persistence.models import ImportItem

_IMPORTS = "IMPORTS"
_OPEN = "IMPORTS#OPEN"
_SK = "#IMPORT"
_RESULT = "RESULT#"
_CONDITION_FAILED = "ConditionalCheckFailedException"
_INDEX_FIELDS = ("pk", "sk", "gsi1pk", "gsi1sk")


def import_pk(import_id: str) -> str:
    return f"IMPORT#{import_id}"


def chunk_pk(import_id: str, index: int) -> str:
    return f"IMPORTCHUNK#{import_id}#{index:05d}"


def result_sk(index: int) -> str:
    return f"{_RESULT}{index:05d}"


class ImportRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def create(self, job: ImportJob, chunks: Sequence[Chunk], audit: AuditEntry | None = None) -> None:
        model = self._models.import_chunk
        with translate_transient(), model.batch_write() as batch:
            for chunk in chunks:
                batch.save(model(pk=chunk_pk(job.import_id, chunk.index), sk="#CHUNK", rows=encode_rows(chunk.rows)))
        item = self._models.import_job(
            pk=import_pk(job.import_id),
            sk=_SK,
            gsi1pk=_IMPORTS,
            gsi1sk=job.import_id,
            gsi2pk=_OPEN,
            gsi2sk=job.import_id,
            import_id=job.import_id,
            status=str(job.status),
            columns=",".join(job.columns),
            total_rows=job.total_rows,
            chunk_count=job.chunk_count,
            next_chunk=0,
            imported=0,
            skipped=0,
            failed=0,
            filename=job.filename,
            actor_key_id=job.actor_key_id,
            created_at=job.created_at,
            updated_at=job.updated_at,
            attempts=0,
        )
        with audited_transaction(self._models.audit, audit) as tx:
            tx.save(item, condition=self._models.import_job.pk.does_not_exist())

    def get(self, import_id: str) -> ImportJob | None:
        with translate_transient():
            try:
                return _to_job(self._models.import_job.get(import_pk(import_id), _SK, consistent_read=True))
            except DoesNotExist:
                return None

    def list(self, *, limit: int, cursor: str | None) -> Page[ImportJob]:
        start = decode_cursor(cursor, fields=_INDEX_FIELDS, partition=("gsi1pk", _IMPORTS)) if cursor else None
        with translate_transient():
            rows = self._models.import_job.gsi1.query(
                _IMPORTS, scan_index_forward=False, limit=limit + 1, last_evaluated_key=start
            )
            return paginate(
                rows,
                limit=limit,
                key_of=lambda row: {"pk": row.pk, "sk": row.sk, "gsi1pk": row.gsi1pk, "gsi1sk": row.gsi1sk},
                convert=_to_job,
            )

    def open_imports(self) -> builtins.list[str]:
        with translate_transient():
            return [str(row.gsi2sk) for row in self._models.import_job.gsi2.query(_OPEN)]

    def claim(self, import_id: str, *, owner: str, now: datetime, until: datetime) -> ImportJob | None:
        model = self._models.import_job
        item = model(pk=import_pk(import_id), sk=_SK)
        try:
            with translate_transient():
                item.update(
                    actions=[
                        model.lease_owner.set(owner),
                        model.lease_until.set(until),
                        model.status.set(str(ImportStatus.RUNNING)),
                        model.started_at.set(model.started_at | now),  # if_not_exists: the first claim's time
                        model.updated_at.set(now),
                    ],
                    condition=model.status.is_in(str(ImportStatus.QUEUED), str(ImportStatus.RUNNING))
                    & (model.lease_until.does_not_exist() | (model.lease_until < now)),
                )
        except UpdateError as error:
            if response_code(error) == _CONDITION_FAILED:
                return None
            raise
        return _to_job(item)

    def chunk(self, import_id: str, index: int) -> Chunk:
        with translate_transient():
            item = self._models.import_chunk.get(chunk_pk(import_id, index), "#CHUNK", consistent_read=True)
        return Chunk(index, decode_rows(item.rows))

    def finish_chunk(
        self, import_id: str, result: ChunkResult, *, now: datetime, lease_until: datetime | None = None
    ) -> bool:
        models = self._models
        job, stored = models.import_job, models.import_result
        issues = [[i.row, i.external_id, str(i.outcome), i.code, i.message, i.details] for i in result.issues]
        try:
            with translate_transient(), GuardedTransactWrite(connection=job._get_connection().connection) as tx:
                tx.save(
                    stored(
                        pk=import_pk(import_id),
                        sk=result_sk(result.index),
                        imported=result.imported,
                        skipped=result.skipped,
                        failed=result.failed,
                        issues=json.dumps(issues, ensure_ascii=False, separators=(",", ":")) if issues else None,
                    ),
                    condition=stored.sk.does_not_exist(),
                )
                tx.update(
                    job(pk=import_pk(import_id), sk=_SK),
                    actions=[
                        job.imported.add(result.imported),
                        job.skipped.add(result.skipped),
                        job.failed.add(result.failed),
                        job.next_chunk.set(result.index + 1),
                        job.updated_at.set(now),
                        *([job.lease_until.set(lease_until)] if lease_until is not None else []),
                    ],
                    condition=job.next_chunk == result.index,
                )
        except TransactWriteError as error:
            codes = cancellation_codes(error)
            if "ConditionalCheckFailed" in codes:
                return False  # another run recorded this chunk first
            if any(code in RETRYABLE_CANCELLATIONS for code in codes):
                raise TransientStoreError(str(error)) from error
            raise
        return True

    def complete(self, import_id: str, *, now: datetime) -> ImportJob:
        model = self._models.import_job
        item = model(pk=import_pk(import_id), sk=_SK)
        try:
            with translate_transient():
                item.update(
                    actions=[
                        model.status.set(str(ImportStatus.COMPLETED)),
                        model.finished_at.set(now),
                        model.updated_at.set(now),
                        model.lease_owner.remove(),
                        model.lease_until.remove(),
                        model.gsi2pk.remove(),
                        model.gsi2sk.remove(),
                    ],
                    condition=(model.status == str(ImportStatus.RUNNING)) & (model.next_chunk >= model.chunk_count),
                )
        except UpdateError as error:
            if response_code(error) != _CONDITION_FAILED:
                raise
            found = self.get(import_id)  # completed by another run meanwhile
            if found is None:
                raise
            return found
        return _to_job(item)

    def release(self, import_id: str, *, owner: str, now: datetime, error: str | None, give_up: bool) -> None:
        model = self._models.import_job
        actions: list[Any] = [model.lease_owner.remove(), model.lease_until.remove(), model.updated_at.set(now)]
        if error is not None:
            actions += [model.attempts.add(1), model.last_error.set(error)]
        if give_up:
            actions += [
                model.status.set(str(ImportStatus.FAILED)),
                model.finished_at.set(now),
                model.gsi2pk.remove(),
                model.gsi2sk.remove(),
            ]
        try:
            with translate_transient():
                model(pk=import_pk(import_id), sk=_SK).update(actions=actions, condition=model.lease_owner == owner)
        except UpdateError as failure:
            if response_code(failure) != _CONDITION_FAILED:
                raise

    def land(self, import_id: str, landings: Sequence[Landing]) -> dict[int, ExternalIdTaken]:
        return MemberRepository(self._models).create_with_opening(landings, import_id=import_id)

    def issues(self, import_id: str, *, limit: int, cursor: str | None) -> Page[RowIssue]:
        """Rows not imported, in row order: the results' issues from the cursor's chunk and
        position on (the cursor names both)."""
        chunk, offset = 0, 0
        if cursor:
            key = decode_cursor(cursor, fields=("import", "chunk", "offset"), partition=("import", import_id))
            try:
                chunk, offset = int(key["chunk"]["S"]), int(key["offset"]["S"])
            except ValueError:
                raise InvalidRequest.for_fields(
                    "invalid cursor", ("cursor", "not a cursor returned by this endpoint", "cursor_invalid")
                ) from None
        model = self._models.import_result
        found: list[tuple[int, int, RowIssue]] = []
        with translate_transient():
            for item in model.query(import_pk(import_id), model.sk.between(result_sk(chunk), f"{_RESULT}~")):
                index = int(item.sk.removeprefix(_RESULT))
                for position, raw in enumerate(json.loads(item.issues) if item.issues else []):
                    if index == chunk and position < offset:
                        continue
                    found.append((index, position, _to_issue(raw)))
                    if len(found) > limit:
                        break
                if len(found) > limit:
                    break
        page = found[:limit]
        next_cursor = None
        if len(found) > limit:
            index, position, _ = found[limit]
            next_cursor = encode_cursor({"import": import_id, "chunk": str(index), "offset": str(position)})
        return Page(items=[issue for _, _, issue in page], next_cursor=next_cursor)


def _to_issue(raw: list[Any]) -> RowIssue:
    row, external_id, outcome, code, message, details = raw
    return RowIssue(int(row), external_id, RowOutcome(outcome), code, message, dict(details or {}))


def _to_job(item: ImportItem) -> ImportJob:
    return ImportJob(
        import_id=item.import_id,
        status=ImportStatus(item.status),
        columns=tuple(item.columns.split(",")),
        total_rows=int(item.total_rows),
        chunk_count=int(item.chunk_count),
        created_at=item.created_at,
        updated_at=item.updated_at,
        filename=item.filename,
        actor_key_id=item.actor_key_id,
        next_chunk=int(item.next_chunk or 0),
        imported=int(item.imported or 0),
        skipped=int(item.skipped or 0),
        failed=int(item.failed or 0),
        started_at=item.started_at,
        finished_at=item.finished_at,
        attempts=int(item.attempts or 0),
        last_error=item.last_error,
    )
