"""The local KMS key that seals webhook and Shopify signing secrets under ``make run``, kept on disk.

Locally the app seals secrets with KMS on the embedded moto server (``chalicelib.integrations.kms``:
``Encrypt`` under the alias ``alias/<table prefix>-webhooks``). moto keeps its keys in memory; a
ciphertext names its key's id and is opened with that key's material. So that secrets sealed
before a restart still open after it, the key's id and material are written to a file under the
data folder the first time and put back into the in-process moto backend at every start, before
the app's first KMS call (which then finds the alias and creates nothing).

This reaches into moto's KMS backend (``moto.kms.models``, pinned in the requirements);
``tests/integration/test_local_run.py`` opens a secret sealed before a restart.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path


def key_file(data_dir: Path, alias: str) -> Path:
    return data_dir / "kms" / f"{alias.removeprefix('alias/')}.json"


def keep_local_key(data_dir: Path, alias: str, region: str) -> Path:
    """Put the key saved under ``data_dir`` (or a new one, then saved) behind ``alias`` in this
    process's moto KMS backend for ``region``; return the file that holds it."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.kms.models import kms_backends

    backend = kms_backends[DEFAULT_ACCOUNT_ID][region]
    path = key_file(data_dir, alias)
    key = backend.create_key(
        policy=None,
        key_usage="ENCRYPT_DECRYPT",
        key_spec="SYMMETRIC_DEFAULT",
        description="webhook signing secrets (local, kept under the data folder)",
        tags=None,
    )
    if path.exists():
        saved = json.loads(path.read_text())
        del backend.keys[key.id]
        key.arn = key.arn.removesuffix(key.id) + saved["key_id"]
        key.id = saved["key_id"]
        key.key_material = base64.b64decode(saved["material"])
        backend.keys[key.id] = key
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"key_id": key.id, "material": base64.b64encode(key.key_material).decode()}
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(record, file)
    backend.delete_alias(alias)
    backend.create_alias(key.id, alias)
    return path
