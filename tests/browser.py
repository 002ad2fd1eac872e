"""A real browser for the web view's tests: Debian's Chromium driven by Playwright's sync API,
headless, with every request and console error of its pages recorded, screenshots kept in a
folder that outlives the test, and the small pipesched project the browser tests and their
benchmark run against (a real daemon on a free port, a real token)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import Project, make_project

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright
    from playwright.sync_api import Request as PageRequest

CHROMIUM_ENV = "PIPESCHED_CHROMIUM"
SCREENSHOTS_ENV = "PIPESCHED_SCREENSHOTS"

#: Headless, as root, and quiet: without the background-networking flags Chromium reaches for
#: Google's hosts (component updates, sync, field trials) on its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: Schemes a page may use without leaving the daemon.
LOCAL_SCHEMES = ("data", "about", "blob")

INSTALL_HINT = (
    "the browser tests drive Debian's Chromium through Playwright: "
    "`apt-get install chromium` and `pip install -e '.[dev]'` (which brings playwright); "
    "never `playwright install`. .ci/run installs both. "
    f"${CHROMIUM_ENV} names another chromium binary."
)


class BrowserMissing(AssertionError):
    """Chromium or Playwright is not installed: a failure that says how to install them."""


def chromium_path() -> str:
    found = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium")
    if not found or not Path(found).exists():
        raise BrowserMissing(f"no chromium found ({INSTALL_HINT})")
    return found


def screenshot_folder() -> Path:
    """``$PIPESCHED_SCREENSHOTS``, else a new folder per session under /tmp."""
    named = os.environ.get(SCREENSHOTS_ENV)
    if named:
        folder = Path(named)
    else:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        folder = Path("/tmp/pipesched-screenshots") / f"{stamp}-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Recorder:
    """What the pages of one browser context asked for and complained about."""

    origin: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def on_request(self, request: PageRequest) -> None:
        self.requests.append(request.url)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "")
            self.console_errors.append(f"{message.text} ({where})")

    def on_page_error(self, error: Any) -> None:
        self.console_errors.append(f"uncaught: {error}")

    def outside(self) -> list[str]:
        """Every request that went anywhere but the daemon's origin."""
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme not in LOCAL_SCHEMES and origin_of(url) != self.origin
        ]

    def assert_same_origin(self) -> None:
        assert self.requests, "the browser recorded no request at all"
        assert not self.outside(), f"requests left {self.origin}: {self.outside()}"

    def assert_no_console_errors(self) -> None:
        assert not self.console_errors, f"console errors: {self.console_errors}"


class BrowserSession:
    """One headless Chromium with one recorded context; ``page`` is its tab."""

    def __init__(self, origin: str, screenshots: Path | None = None) -> None:
        self.origin = origin.rstrip("/")
        self.screenshots = screenshots or screenshot_folder()
        self.recorder = Recorder(self.origin)
        self._playwright: Playwright | None = None
        self.browser: Browser | None = None
        self.context: BrowserContext | None = None
        self._page: Page | None = None

    def start(self) -> BrowserSession:
        executable = chromium_path()
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as missing:
            raise BrowserMissing(f"playwright is not installed ({INSTALL_HINT})") from missing
        self._playwright = sync_playwright().start()
        try:
            self.browser = self._playwright.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS
            )
        except Exception:
            self._playwright.stop()
            self._playwright = None
            raise
        self.context = self.new_context()
        self._page = self.context.new_page()
        return self

    def new_context(self, **options: Any) -> BrowserContext:
        """A fresh context (own cookies, own cache) whose pages are recorded too."""
        assert self.browser is not None, "start() first"
        context = self.browser.new_context(base_url=self.origin, **options)
        context.on("request", self.recorder.on_request)
        context.on("page", self._watch)
        return context

    def _watch(self, page: Page) -> None:
        page.on("console", self.recorder.on_console)
        page.on("pageerror", self.recorder.on_page_error)

    @property
    def page(self) -> Page:
        assert self._page is not None, "start() first"
        return self._page

    def goto(self, path: str) -> Any:
        """Open ``path`` of the daemon in the tab; the main response."""
        return self.page.goto(self.origin + path)

    def shoot(self, name: str, page: Page | None = None) -> Path:
        return shoot(page or self.page, name, self.screenshots)

    def close(self) -> None:
        if self.browser is not None:
            self.browser.close()
            self.browser = None
        if self._playwright is not None:
            self._playwright.stop()
            self._playwright = None


def shoot(page: Page, name: str, folder: Path | None = None) -> Path:
    """A full-page PNG of ``page`` in ``folder`` (default: ``screenshot_folder()``)."""
    target = (folder or screenshot_folder()) / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)
    return target


@contextmanager
def browser_session(origin: str, screenshots: Path | None = None) -> Iterator[BrowserSession]:
    session = BrowserSession(origin, screenshots)
    try:
        yield session.start()
    finally:
        session.close()


def page_weight(context: BrowserContext, url: str) -> dict[str, int]:
    """Body bytes of ``url`` and of every subresource it loaded, by URL, in a new tab of
    ``context`` (give it a fresh context: nothing comes from cache)."""
    sizes: dict[str, int] = {}
    pending: list[Any] = []

    def on_response(response: Any) -> None:  # Playwright takes functions, not bound builtins
        pending.append(response)

    page = context.new_page()
    page.on("response", on_response)
    try:
        page.goto(url, wait_until="networkidle")
        for response in pending:
            try:
                body = response.body()
            except Exception:  # a redirect has no body
                body = b""
            sizes[response.url] = sizes.get(response.url, 0) + len(body)
    finally:
        page.close()
    return sizes


# -- the project the browser tests run against ---------------------------------------------

CHAIN = """
    parameters:
      quality: {type: float, default: 0.5}
    steps:
      prep:
        type: python_script
        script: prep.py
        allow_reuse: false
      train:
        type: python_script
        script: train.py
        arguments: [--quality, "${{parameters.quality}}"]
        depends_on: [prep]
        allow_reuse: false
      score:
        type: python_script
        script: score.py
        depends_on: [train]
        allow_reuse: false
"""
CHAIN_SCRIPTS = {
    "prep.py": "print('prepared', flush=True)\n",
    "train.py": """
        import sys
        from scheduler.runtime import Run

        quality = float(sys.argv[2])
        Run.get_context().log("accuracy", quality)
        print(f"trained to accuracy {quality}", flush=True)
    """,
    "score.py": "print('scored', flush=True)\n",
}

#: One step that prints ``line 1`` (after ``--start`` exists, when given), stamps the wall time
#: it did so into ``--stamp`` (when given), and prints ``line 2`` once ``--release`` exists.
SLOW = """
    parameters:
      start: {type: str, default: ""}
      release: {type: str, default: ""}
      stamp: {type: str, default: ""}
    steps:
      wait:
        type: python_script
        script: wait.py
        arguments:
          - "${{parameters.start}}"
          - "${{parameters.release}}"
          - "${{parameters.stamp}}"
        allow_reuse: false
"""
SLOW_SCRIPTS = {
    "wait.py": """
        import pathlib, sys, time

        start, release, stamp = sys.argv[1:4]
        deadline = time.monotonic() + 120


        def wait_for(path):
            while not pathlib.Path(path).exists():
                if time.monotonic() > deadline:
                    sys.exit(f"{path} never appeared")
                time.sleep(0.01)


        if start:
            wait_for(start)
        print("line 1", flush=True)
        if stamp:
            pathlib.Path(stamp).write_text(repr(time.time()))
        if release:
            wait_for(release)
        print("line 2", flush=True)
    """
}
SCHEDULES = """
    schedules:
      - name: nightly
        pipeline: chain
        cron: "0 2 * * *"
        timezone: Europe/Berlin
      - name: drops
        pipeline: chain
        on_change:
          datastore: default
          path: inbox/
          patterns: ["*.csv"]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def web_project(root: Path) -> Project:
    """Pipelines ``chain`` (prep → train → score; train logs ``accuracy`` = its ``quality``
    parameter) and ``slow`` (see SLOW), the cron schedule ``nightly``, the file-drop schedule
    ``drops`` and a registered model ``chain-model``, with the API on a free port."""
    project = make_project(root, api={"host": "127.0.0.1", "port": free_port()})
    project.pipeline("chain", CHAIN, CHAIN_SCRIPTS)
    project.pipeline("slow", SLOW, SLOW_SCRIPTS)
    project.schedules(SCHEDULES)
    (project.datastore / "inbox").mkdir(parents=True, exist_ok=True)
    weights = root / "model.txt"
    weights.write_text("weights\n")
    with project.store() as store:
        # lazy: the registry's service, only to give the models page a row
        from scheduler.services.models import register_model

        register_model(project.config(), store, weights, "chain-model", tags={"area": "tests"})
    return project


@dataclass
class Served:
    """A running daemon on a project: its origin and an API token."""

    project: Project
    daemon: DaemonProcess
    origin: str
    token: str

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, self.origin + path, headers=headers, timeout=30, **kwargs)

    def submit(self, pipeline: str, **parameters: Any) -> str:
        """Start a run through the REST API; its id."""
        answer = self.api(
            "POST", f"/api/v1/pipelines/{pipeline}/runs", json={"ParameterAssignments": parameters}
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["Id"])

    def shown(self, run_id: str) -> dict[str, Any]:
        """``pipesched show --json`` of the run."""
        done = self.project.cli("show", run_id, "--json")
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    def wait_status(self, run_id: str, *statuses: str, timeout: float = 60) -> dict[str, Any]:
        return wait_until(
            lambda: (shown := self.shown(run_id))["status"] in statuses and shown,
            timeout=timeout,
            message=f"run {run_id} never became {' or '.join(statuses)}",
        )


@contextmanager
def served(root: Path) -> Iterator[Served]:
    project = web_project(root)
    daemon = DaemonProcess(project).start()
    try:
        (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
        yield Served(project, daemon, origin_of(listening["url"]), project.token("browser"))
    finally:
        daemon.close()
