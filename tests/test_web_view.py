"""The web view over HTTP, without a browser: who gets in (the login form, the session cookie's
attributes, revoked and forged sessions, CSRF and foreign origins), and what each page holds
for a real project's runs. A real daemon on 127.0.0.1; the browser tests drive the same pages
in Chromium."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import Project
from tests.test_cli_fast_reads import ACCURACIES, build_project


class Live:
    def __init__(
        self, project: Project, run_ids: list[str], url: str, token: str, flaky_id: str
    ) -> None:
        self.project, self.run_ids, self.url, self.token = project, run_ids, url, token
        self.flaky_id = flaky_id

    def session(self) -> requests.Session:
        """A browser-like client logged in with the token."""
        client = requests.Session()
        answer = client.post(
            f"{self.url}/login", data={"token": self.token}, allow_redirects=False, timeout=10
        )
        assert answer.status_code == 303, answer.text
        return client

    def token_for(self, name: str) -> str:
        return self.project.token(name)


FLAKY = """
    steps:
      flaky:
        type: python_script
        script: flaky.py
        retries: 1
"""
FLAKY_SCRIPT = """
    import pathlib, sys
    marker = pathlib.Path(__file__).resolve().parent / "tried"
    if not marker.exists():
        marker.write_text("once")
        print("<b>first try fails</b>")
        sys.exit(3)
    print("second try works")
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    project, run_ids = build_project(tmp_path_factory.mktemp("web") / "p")
    project.pipeline("flaky", FLAKY, {"flaky.py": FLAKY_SCRIPT})
    done = project.cli("run", "flaky", "--json")
    assert done.returncode == 0, done.stderr
    run_ids = [*run_ids]
    flaky_id = json.loads(done.stdout)["id"]
    daemon = DaemonProcess(project).start()
    try:
        (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
        yield Live(project, run_ids, listening["url"], project.token("browser"), flaky_id)
    finally:
        daemon.close()


@pytest.fixture(scope="module")
def client(live: Live) -> requests.Session:
    return live.session()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


# ---- access --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/runs", "/pipelines/train", "/schedules", "/models"])
def test_a_page_without_a_session_sends_the_browser_to_the_login_form(live: Live, path: str):
    answer = requests.get(f"{live.url}{path}", allow_redirects=False, timeout=10)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/login?next={path}"


def test_the_login_form_refuses_a_wrong_token_and_says_so(live: Live):
    answer = requests.post(f"{live.url}/login", data={"token": "pst_nope"}, timeout=10)
    assert answer.status_code == 401
    assert "That token is not valid" in answer.text
    assert "pipesched_session" not in answer.headers.get("set-cookie", "")


def test_a_login_sets_a_private_session_cookie_and_never_puts_the_token_in_a_url(live: Live):
    answer = requests.post(
        f"{live.url}/login",
        data={"token": live.token, "next": "/schedules"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/schedules"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("pipesched_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback: a Secure cookie would never return
    assert live.token not in cookie
    assert live.token not in answer.headers["location"]


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil", ""])
def test_a_login_only_returns_to_a_page_of_this_daemon(live: Live, target: str):
    answer = requests.post(
        f"{live.url}/login",
        data={"token": live.token, "next": target},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.headers["location"] == "/runs"


def test_revoking_the_token_ends_its_sessions(live: Live):
    token = live.token_for("short-lived")
    client = requests.Session()
    client.post(f"{live.url}/login", data={"token": token}, allow_redirects=False, timeout=10)
    assert client.get(f"{live.url}/runs", allow_redirects=False, timeout=10).status_code == 200
    revoked = live.project.cli("token", "revoke", "short-lived")
    assert revoked.returncode == 0, revoked.stderr
    assert client.get(f"{live.url}/runs", allow_redirects=False, timeout=10).status_code == 303


def test_a_forged_or_altered_cookie_is_no_session(live: Live, client: requests.Session):
    real = client.cookies["pipesched_session"]
    for forged in (real[:-3] + ("aaa" if not real.endswith("aaa") else "bbb"), "x" * 5000, "{}"):
        answer = requests.get(
            f"{live.url}/runs",
            cookies={"pipesched_session": forged},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 303


def test_a_change_without_the_csrf_token_or_from_another_site_is_refused(live: Live):
    client = live.session()
    page = client.get(f"{live.url}/schedules", timeout=10).text
    url = f"{live.url}/schedules/yearly/disable"
    assert client.post(url, data={}, allow_redirects=False, timeout=10).status_code == 403
    assert (
        client.post(url, data={"csrf": "guess"}, allow_redirects=False, timeout=10).status_code
        == 403
    )
    foreign = client.post(
        url,
        data={"csrf": csrf_of(page)},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
        timeout=10,
    )
    assert foreign.status_code == 403
    schedules = live.project.cli("schedules", "--json")
    assert '"enabled": true' in schedules.stdout  # nothing changed


def test_log_out_ends_the_session_in_the_browser(live: Live):
    client = live.session()
    page = client.get(f"{live.url}/runs", timeout=10).text
    answer = client.post(
        f"{live.url}/logout", data={"csrf": csrf_of(page)}, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 303
    assert client.get(f"{live.url}/runs", allow_redirects=False, timeout=10).status_code == 303


def test_the_api_still_wants_its_bearer_token(live: Live, client: requests.Session):
    """A session cookie opens pages, not /api/: scripts keep using tokens."""
    assert client.get(f"{live.url}/api/v1/runs", timeout=10).status_code == 401


# ---- pages ---------------------------------------------------------------------------------


class Resources(HTMLParser):
    """Every URL a page would load or link to."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "action", "hx-get", "hx-post") and value:
                self.urls.append(value)


def page_paths(live: Live) -> list[str]:
    return [
        "/runs",
        "/runs?status=completed&trigger=manual",
        f"/runs/{live.run_ids[-1]}",
        "/pipelines",
        "/pipelines/train?metric=accuracy",
        "/schedules",
        "/schedules/yearly",
        "/models",
        "/login",
    ]


def test_every_page_loads_only_from_the_daemon_and_says_its_server_time(
    live: Live, client: requests.Session
):
    origin = urlsplit(live.url).netloc
    for path in page_paths(live):
        answer = client.get(f"{live.url}{path}", timeout=10)
        assert answer.status_code == 200, (path, answer.text[-500:])
        assert "default-src 'self'" in answer.headers["content-security-policy"]
        if path != "/login":
            assert re.fullmatch(r"app;dur=[0-9.]+", answer.headers["server-timing"]), path
        parser = Resources()
        parser.feed(answer.text)
        for url in parser.urls:
            if url.startswith("data:") or url.startswith("#"):
                continue
            assert urlsplit(urljoin(f"{live.url}{path}", url)).netloc == origin, (path, url)


def test_the_static_files_are_served_from_the_package(live: Live):
    script = requests.get(f"{live.url}/static/htmx.min.js", timeout=10)
    assert script.status_code == 200
    assert "htmx" in script.text[:2000]


def test_runs_are_newest_first_and_filter_by_status_pipeline_and_trigger(
    live: Live, client: requests.Session
):
    listed = re.findall(r'data-run-id="([^"]+)"', client.get(f"{live.url}/runs", timeout=10).text)
    assert listed == [live.flaky_id, *live.run_ids[::-1]]
    for query in ("status=failed", "pipeline=nothing", "trigger=schedule", "schedule=yearly"):
        page = client.get(f"{live.url}/runs?{query}", timeout=10).text
        assert "data-run-id" not in page, query
        assert "No runs match these filters" in page
    for query in ("pipeline=train", "experiment=train"):
        page = client.get(f"{live.url}/runs?{query}", timeout=10).text
        assert re.findall(r'data-run-id="([^"]+)"', page) == live.run_ids[::-1], query


def test_a_run_page_shows_its_steps_timeline_graph_metrics_and_log(
    live: Live, client: requests.Session
):
    newest = live.run_ids[-1]
    page = client.get(f"{live.url}/runs/{newest[:8]}", timeout=10).text
    assert 'id="run-status" data-status="completed"' in page
    assert sorted(re.findall(r'<tr data-step="([^"]+)"', page)) == ["score", "train"]
    assert len(re.findall(r'class="bar [^"]*"', page)) == 2
    nodes = re.findall(r'<g class="node[^"]*" data-step="([^"]+)" data-status="([^"]+)"', page)
    assert sorted(nodes) == [("score", "completed"), ("train", "completed")]
    assert 'class="edge"' not in page  # the two steps do not depend on each other
    assert f"{float(ACCURACIES[-1]):.4g}" in page  # the accuracy the newest run logged
    assert 'id="log-text"' in page
    assert 'id="cancel"' not in page  # a finished run has nothing to cancel


def test_a_missing_run_or_pipeline_is_a_404_page_naming_it(live: Live, client: requests.Session):
    answer = client.get(f"{live.url}/runs/zzzzzzzz", timeout=10)
    assert answer.status_code == 404
    assert "zzzzzzzz" in answer.text
    answer = client.get(f"{live.url}/pipelines/nothing", timeout=10)
    assert answer.status_code == 404
    assert "nothing" in answer.text


def test_the_pipeline_page_charts_the_metric_of_each_run(live: Live, client: requests.Session):
    page = client.get(f"{live.url}/pipelines/train?metric=accuracy&last=10", timeout=10).text
    values = [float(v) for v in re.findall(r'data-value="([^"]+)"', page)]
    assert values == [float(a) for a in ACCURACIES]  # oldest first
    assert 'id="endpoint"' in page


def test_the_schedules_page_describes_each_schedule_in_plain_words(
    live: Live, client: requests.Session
):
    page = client.get(f"{live.url}/schedules", timeout=10).text
    assert 'data-schedule="yearly"' in page
    assert re.search(r'class="description"[^>]*>[A-Z][a-z]', page)


def test_the_log_poll_hands_on_the_bytes_after_the_offset(live: Live, client: requests.Session):
    newest = live.run_ids[-1]
    url = f"{live.url}/runs/{newest}/log?step=train&attempt=1"
    whole = client.get(f"{url}&offset=0", timeout=10).text
    assert "trained to 0.85" in whole
    assert 'data-done="true"' in whole  # a finished step is not polled again
    rest = client.get(f"{url}&offset={len('trained to ')}", timeout=10).text
    assert 'beforeend:#log-text">0.85' in rest
    retried = client.get(f"{live.url}/runs/{newest}/log?step=train&attempt=2&offset=0", timeout=10)
    assert retried.headers.get("hx-refresh") == "true"  # another attempt: the page reloads


def test_the_models_page_lists_each_version_with_its_run(live: Live, client: requests.Session):
    page = client.get(f"{live.url}/models", timeout=10).text
    assert 'data-model="reads-model"' in page
    assert f'href="/runs/{live.run_ids[-1]}"' in page


def test_a_retried_step_lists_each_attempt_and_its_log_is_escaped(
    live: Live, client: requests.Session
):
    page = client.get(f"{live.url}/runs/{live.flaky_id}", timeout=10).text
    assert '<tr data-step="flaky" data-status="completed"' in page
    assert "<li>1: failed, exit 3" in page
    assert "<li>2: completed, exit 0" in page
    assert "second try works" in page  # the latest attempt's log
    first = client.get(
        f"{live.url}/runs/{live.flaky_id}/log?step=flaky&attempt=2&offset=0", timeout=10
    ).text
    assert "<b>" not in page + first
