"""``/docs`` works with no internet: the page refers only to the daemon's own URLs, and each
of them answers with the script, style sheet or icon shipped in the package."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlparse

import requests

from tests.api_server import live_api
from tests.projects import make_project

TIMEOUT = 30


class References(HTMLParser):
    """Every URL a browser would fetch for the page: src and href attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def test_docs_page_loads_its_assets_from_the_daemon_only(tmp_path: Path):
    project = make_project(tmp_path)
    with project.store() as store, live_api(project.config(), store) as api:
        page = requests.get(f"{api.url}/docs", timeout=TIMEOUT)
        assert page.status_code == 200
        parser = References()
        parser.feed(page.text)
        assert len(parser.urls) == 3, parser.urls  # script, style sheet, icon
        origin = urlparse(api.url).netloc
        fetched = {}
        for reference in parser.urls:
            url = urljoin(f"{api.url}/docs", reference)
            assert urlparse(url).netloc == origin, f"{reference} is not the daemon's"
            answer = requests.get(url, timeout=TIMEOUT)
            assert answer.status_code == 200, url
            fetched[Path(urlparse(url).path).suffix] = answer
        assert "https://" not in page.text and "http://" not in page.text
        # The page asks for the daemon's document, not an online one.
        assert "url: '/openapi.json'" in page.text
        assert requests.get(f"{api.url}/openapi.json", timeout=TIMEOUT).status_code == 200

    assert "javascript" in fetched[".js"].headers["content-type"]
    assert "SwaggerUIBundle" in fetched[".js"].text
    assert fetched[".css"].headers["content-type"].startswith("text/css")
    assert ".swagger-ui" in fetched[".css"].text
    assert fetched[".png"].content.startswith(b"\x89PNG")


def test_the_assets_ship_inside_the_package():
    import scheduler.api  # lazy: to find the installed package's folder

    folder = Path(scheduler.api.__file__).with_name("swagger_ui")
    shipped = {p.name for p in folder.iterdir()}
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE"} <= shipped
