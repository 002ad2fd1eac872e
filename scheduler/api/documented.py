"""The OpenAPI document tells the truth: every status a path can answer is listed with the shape
of its body, and a 405 names every method of its path in ``Allow``.

What each path can answer besides its success, and why:
- 401 — every ``/api/`` path: the bearer token is missing, wrong or revoked (TCP listener);
- 404 — a path naming something (``{run_id}``, ``{name}``...) or submitting to a pipeline: it
  does not exist;
- 409 — a path naming something, and every write: the state forbids it (a finished run, a taken
  name or label, a schedule of schedules.yaml);
- 413 — every request with a body: larger than ``api.max_body_bytes`` (``api.max_upload_bytes``
  for uploads);
- 400 — every request with a body: one that cannot be read;
- 422 — every path with parameters or a body: a value that is not valid, naming it;
- 503 — ``/healthz``: the daemon cannot do its work (the reason in the body).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

READS = {"GET", "HEAD"}


class ErrorAnswer(BaseModel):
    """A refusal: what went wrong, in words (``detail``)."""

    detail: str


class Problem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ProblemsAnswer(BaseModel):
    """A request refused for its values: each problem names its field in ``loc``."""

    detail: list[Problem]


ERROR = "#/components/schemas/ErrorAnswer"
PROBLEMS = "#/components/schemas/HTTPValidationError"


def _answer(description: str, ref: str = ERROR) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


UNAUTHORIZED = _answer("No valid bearer token (`Authorization: Bearer <token>`)")
NOT_FOUND = _answer("Not found")
CONFLICT = _answer("Refused in the present state (a finished run, a name or label taken...)")
TOO_LARGE = _answer("The request body is larger than the daemon accepts")
BAD_BODY = _answer("The request body cannot be read")
INVALID = _answer("A value is not valid: each problem names its field in `loc`", PROBLEMS)
UNAVAILABLE = _answer("The daemon cannot do its work now; `detail` says why")


def document_statuses(app: FastAPI) -> None:
    """The app's OpenAPI document with the answers each operation can give besides its own
    (see the module's list)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            add_statuses(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def add_statuses(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("ErrorAnswer", ErrorAnswer.model_json_schema())
    components.setdefault(
        "HTTPValidationError",
        ProblemsAnswer.model_json_schema(ref_template="#/components/schemas/{model}"),
    )
    for defs_name, defs in ProblemsAnswer.model_json_schema().get("$defs", {}).items():
        components.setdefault(defs_name, defs)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            writes = method.upper() not in READS
            names = "{" in path
            extra: dict[str, dict[str, Any]] = {}
            if path.startswith("/api/"):
                extra["401"] = UNAUTHORIZED
                if names or writes:
                    extra["404"] = NOT_FOUND
                    extra["409"] = CONFLICT
            if writes:
                extra["400"] = BAD_BODY
                extra["413"] = TOO_LARGE
            if writes or operation.get("parameters"):
                extra["422"] = INVALID
            if path == "/healthz":
                extra["503"] = UNAVAILABLE
            responses = operation.setdefault("responses", {})
            for status, answer in extra.items():
                responses.setdefault(status, answer)


# The only query parameters that may repeat (``?status=a&status=b``, ``?tag=a&tag=b=c``).
LIST_QUERY = {"status", "tag", "property"}


def single_query_values(request: Request) -> None:
    """A dependency: a query parameter given twice is a 422 naming it (FastAPI would keep the
    last value silently), except those that are lists."""
    for key in request.query_params:
        if key not in LIST_QUERY and len(request.query_params.getlist(key)) > 1:
            msg = f"query parameter '{key}' is given more than once"
            raise HTTPException(
                422, detail=[{"loc": ["query", key], "msg": msg, "type": "value_error"}]
            )


def install_validation_answers(app: FastAPI) -> None:
    """A 422 names each problem's field and why, never the value itself: FastAPI's own answer
    echoes every rejected value (``input``), so a 10 MB name would come back as 10 MB."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {
                "loc": list(error.get("loc", ())),
                "msg": str(error.get("msg", ""))[:500],
                "type": str(error.get("type", "value_error")),
            }
            for error in exc.errors()[:MAX_PROBLEMS]
        ]
        return JSONResponse({"detail": problems}, status_code=422)


MAX_PROBLEMS = 50


def install_method_not_allowed(app: FastAPI) -> None:
    """405 names every method its path has in ``Allow``: Starlette names only those of the
    first route matching the path, and a path here can have several (GET and POST
    ``/api/v1/schedules``)."""
    methods_of: list[tuple[re.Pattern[str], list[str]]] = []

    def allowed(path: str) -> list[str] | None:
        if not methods_of:
            for template, operations in app.openapi().get("paths", {}).items():
                regex, _, _ = compile_path(template)
                methods_of.append((regex, sorted(m.upper() for m in operations)))
        for regex, methods in methods_of:
            if regex.match(path):
                return methods
        return None

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code != 405:
            return await http_exception_handler(request, exc)
        headers = dict(exc.headers or {})
        methods = allowed(request.url.path)
        if methods:
            headers["Allow"] = ", ".join(methods)
        return JSONResponse({"detail": exc.detail}, status_code=405, headers=headers)
