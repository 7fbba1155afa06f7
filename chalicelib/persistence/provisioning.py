"""Creating the control-plane table and each tenant's own table."""

from __future__ import annotations

from collections.abc import Callable

from pynamodb.exceptions import TableError

from chalicelib.domain.errors import RetryLater
from chalicelib.persistence.errors import response_code, translate_transient
from chalicelib.persistence.factory import ConnectionConfig, control_models, tenant_models
from chalicelib.persistence.models import IndexedItem


def _ensure_table(schema: type[IndexedItem]) -> None:
    """Create the table unless it exists, and wait until it is ACTIVE. Idempotent."""
    with translate_transient():
        if schema.exists():
            return
        try:
            schema.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
        except TableError as error:
            if response_code(error) == "LimitExceededException":  # 500 table operations at once, or the quota
                raise RetryLater(
                    "DynamoDB refused a new table for now (table operations or quota); retry later",
                    details={"table": schema.Meta.table_name},
                ) from None
            if response_code(error) != "ResourceInUseException":  # a concurrent creator won
                raise
            schema.create_table(wait=True, billing_mode="PAY_PER_REQUEST")  # returns once it is active


class TableProvisioner:
    def __init__(
        self, *, control_table: str, tenant_table_name: Callable[[str], str], config: ConnectionConfig
    ) -> None:
        self._control_table = control_table
        self._tenant_table_name = tenant_table_name
        self._config = config

    def ensure_control_table(self) -> None:
        _ensure_table(control_models(self._control_table, self._config).schema)

    def ensure_tenant_tables(self, tenant_id: str) -> None:
        _ensure_table(tenant_models(tenant_id, self._tenant_table_name(tenant_id), self._config).schema)
