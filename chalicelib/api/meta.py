"""Unauthenticated endpoints: the API description and a health check."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint, Response

from chalicelib.api.routing import ApiRequest, endpoint, schemas

if TYPE_CHECKING:
    from chalicelib.api.schemas.meta import Health

bp = Blueprint(__name__)
TAG = "Meta"


@endpoint(
    bp,
    "/health",
    "GET",
    summary="Liveness (does not touch DynamoDB)",
    description=(
        "Answers `ok` while the API serves requests. Touches no table, so it says nothing about DynamoDB; "
        "no key needed."
    ),
    tag=TAG,
    auth="none",
    response=schemas.meta.Health,
)
def health(request: ApiRequest) -> Health:
    from chalicelib.api.schemas.meta import Health

    return Health(status="ok")


@bp.route("/openapi.json", methods=["GET"])
def openapi_json() -> Response:
    """The OpenAPI 3.1 document (served as-is: it describes the others, not itself)."""
    from chalicelib.api.openapi import openapi_document

    return Response(body=openapi_document(), status_code=200, headers={"Content-Type": "application/json"})
