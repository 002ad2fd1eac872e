"""``/docs``: Swagger UI served from files shipped in the package, so the page works on a
machine with no internet access and loads nothing from outside the daemon."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_UI_VERSION = "5.35.0"
ASSETS_DIR = Path(__file__).with_name("swagger_ui")
ASSETS_PATH = "/docs/assets"


def install_docs(app: FastAPI, openapi_url: str) -> None:
    """Serve the page at ``/docs`` and its script, style sheet and icon under ``/docs/assets``
    (the app is made with ``docs_url=None``, so FastAPI's page, which loads them from a CDN,
    is not served)."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        # Behind a proxy that mounts the daemon under a prefix, links keep that prefix.
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} API",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
            # Swagger UI would otherwise ask an online validator about the document.
            swagger_ui_parameters={"validatorUrl": None},
        )
