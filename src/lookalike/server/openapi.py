"""What the OpenAPI schema declares beyond FastAPI's defaults: every error status the API answers with.

Every error is ``{"error": "...", "status": N}`` (:class:`ErrorBody`; validation errors add ``details``). Each
route lists the statuses its own code raises (``responses=errors(...)`` at the route); :func:`declare_errors`
then gives every ``/api`` route the ones any of them may answer: 400 (a bad request the handler found), 401
(the server's token is missing), 422 (the request does not match the schema: FastAPI's validation, answered
in our error shape, not FastAPI's ``detail`` list), 503 (the library's storage failed: disk full, read-only,
corrupt), 413 on every route but GET ones (the body cap, answered before the body is read), and 404 on
every route with an id in its path (no such image, job or person). The API
fuzz test (tests/server/test_fuzz.py) checks that no other status and no other shape comes back.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

DESCRIPTIONS = {
    400: "a bad request: one line says what was wrong",
    401: "the server's API token is missing or wrong",
    403: "refused: outside the folders this server may index, or a URL to a private address",
    404: "no such image, job or file on disk",
    409: "conflict: a job is already running, a file changed since it was indexed, or another model built the index",
    413: "too large: the request body, the image, or the image behind a URL",
    422: "the request does not match the schema, or the image cannot be decoded",
    503: "the library's storage failed (disk full, read-only, corrupt)",
}


class ErrorBody(BaseModel):
    error: str
    status: int
    details: list[dict[str, Any]] | None = None


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that answers these error statuses."""
    return {c: {"model": ErrorBody, "description": DESCRIPTIONS[c]} for c in codes}


def declare_errors(app: FastAPI) -> None:
    """Add the statuses every ``/api`` operation may answer (see the module docstring) to the app's schema."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("ErrorBody", ErrorBody.model_json_schema())
        ref = {"$ref": "#/components/schemas/ErrorBody"}
        for path, ops in schema.get("paths", {}).items():
            if not path.startswith("/api"):
                continue
            for method, op in ops.items():
                # the body cap answers every method but GET, HEAD and OPTIONS (server/guards.py BodyLimit)
                codes = [400, 401, 422, 503] + ([413] if method in ("post", "put", "patch", "delete") else [])
                if "{" in path:  # an id in the path: there may be no such image, job or person
                    codes.append(404)
                responses = op.setdefault("responses", {})
                if "HTTPValidationError" in str(responses.get("422")):  # ours answer in our error shape
                    del responses["422"]
                for code in codes:
                    responses.setdefault(str(code), {"description": DESCRIPTIONS[code],
                                                     "content": {"application/json": {"schema": ref}}})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
