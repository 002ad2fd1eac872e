"""The web view in a real browser, as a person uses it: headless Chromium (Debian's, through
Playwright) on a real daemon with real runs. Logging in, a finished run's timeline and graph,
a running step's log following on the page, cancelling a run, disabling and enabling a
schedule, and a metric's trend across runs; each page is screenshotted, and at the end no page
has asked anything of a host other than the daemon, nor logged a console error."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.browser import BrowserMissing, BrowserSession, Served, browser_session, served
from tests.conftest import wait_until

# expect() retries until its timeout: no sleep-and-hope. Without playwright the browser
# fixture fails each test, saying how to install it.
with contextlib.suppress(ImportError):
    from playwright.sync_api import expect

pytestmark = pytest.mark.slow

#: How long the page may take to show what the daemon already knows (a live part refreshes
#: every 2 s at most; the machine may be busy).
SHOWS = 15_000


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("web-browser") / "p") as running:
        yield running


@pytest.fixture(scope="module")
def browser(live: Served, request: pytest.FixtureRequest) -> Iterator[BrowserSession]:
    try:
        with browser_session(live.origin) as session:
            yield session
            capture = request.config.pluginmanager.getplugin("capturemanager")
            with capture.global_and_fixture_disabled():
                print(f"\nweb view screenshots: {session.screenshots}")
    except BrowserMissing as missing:
        pytest.fail(str(missing))


@pytest.fixture(autouse=True)
def stays_with_the_daemon(browser: BrowserSession) -> Iterator[None]:
    """After each test: no page asked another host for anything, none logged an error (per
    test, since xdist may split this module's tests between workers)."""
    yield
    assert not browser.recorder.outside(), f"requests left the daemon: {browser.recorder.outside()}"
    browser.recorder.assert_no_console_errors()


@pytest.fixture
def signed_in(browser: BrowserSession, live: Served) -> BrowserSession:
    """The browser with a session: logs in through the form when it has none yet."""
    if not any(c["name"] == "pipesched_session" for c in browser.page.context.cookies()):
        browser.goto("/login")
        browser.page.fill("#token", live.token)
        browser.page.click("#login")
        browser.page.wait_for_url(re.compile(r"/runs"))
    return browser


def test_the_api_docs_page_loads_from_the_daemon_alone(browser: BrowserSession) -> None:
    answer = browser.goto("/docs")
    assert answer is not None and answer.status == 200
    expect(browser.page.locator(".swagger-ui .info")).to_be_visible(timeout=SHOWS)
    browser.shoot("docs")
    browser.recorder.assert_same_origin()


def test_a_page_without_a_session_goes_to_the_login_page(browser: BrowserSession) -> None:
    browser.goto("/runs")
    browser.page.wait_for_url(re.compile(r"/login\?next=(%2F|/)runs"))
    expect(browser.page.locator("form#login-form input#token")).to_be_visible()
    browser.shoot("login")


def test_a_wrong_token_shows_an_error(browser: BrowserSession) -> None:
    browser.goto("/login")
    browser.page.fill("#token", "pst_not-a-token")
    with browser.page.expect_response(lambda r: r.request.method == "POST") as posted:
        browser.page.click("#login")
    assert posted.value.status == 401
    expect(browser.page.locator("p.error")).to_be_visible()
    assert not any(c["name"] == "pipesched_session" for c in browser.page.context.cookies())
    browser.shoot("login-wrong-token")
    # Chromium reports the 401 of the page itself as a console error: that one was asked for.
    browser.recorder.console_errors[:] = [
        e for e in browser.recorder.console_errors if "status of 401" not in e
    ]


def test_the_right_token_lands_on_the_runs_page(browser: BrowserSession, live: Served) -> None:
    browser.goto("/login")
    browser.page.fill("#token", live.token)
    browser.page.click("#login")
    browser.page.wait_for_url(re.compile(r"/runs$"))
    expect(browser.page.locator("table#runs")).to_be_visible()
    session = next(c for c in browser.page.context.cookies() if c["name"] == "pipesched_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    expect(browser.page.locator("form#filters")).to_be_visible()
    expect(browser.page.locator("form#logout-form button#logout")).to_be_visible()
    again = browser.goto("/runs")
    assert again is not None and re.fullmatch(r"app;dur=[\d.]+", again.headers["server-timing"])
    browser.shoot("runs")


def test_a_post_without_its_csrf_token_is_refused(live: Served) -> None:
    """Checked with plain HTTP: a browser's own forms always carry the token."""
    http = requests.Session()
    signed = http.post(
        f"{live.origin}/login",
        data={"token": live.token, "next": "/schedules"},
        allow_redirects=False,
        timeout=30,
    )
    assert signed.status_code == 303 and "pipesched_session" in http.cookies
    disable = f"{live.origin}/schedules/nightly/disable"
    assert http.post(disable, allow_redirects=False, timeout=30).status_code == 403
    forged = http.post(disable, data={"csrf": "forged"}, allow_redirects=False, timeout=30)
    assert forged.status_code == 403
    page = http.get(f"{live.origin}/schedules", timeout=30).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf, page
    elsewhere = http.post(
        disable,
        data={"csrf": csrf.group(1)},
        headers={"Origin": "http://elsewhere.example"},
        allow_redirects=False,
        timeout=30,
    )
    assert elsewhere.status_code == 403
    assert schedule(live, "nightly")["enabled"] is True


def test_a_finished_run_shows_its_timeline_and_graph(signed_in: BrowserSession, live: Served):
    run_id = live.submit("chain", quality=0.5)
    live.wait_status(run_id, "completed")
    signed_in.goto("/runs")
    page = signed_in.page
    row = page.locator(f'table#runs tr[data-run-id="{run_id}"]')
    expect(row).to_have_attribute("data-status", "completed", timeout=SHOWS)
    row.locator("a.run-link").click()
    page.wait_for_url(re.compile(f"/runs/{run_id}$"))
    expect(page.locator("#run-status")).to_have_attribute("data-status", "completed")
    bars = page.locator("svg#timeline rect.bar")
    expect(bars).to_have_count(3)
    assert sorted(bars.evaluate_all("els => els.map(e => e.dataset.step)")) == [
        "prep",
        "score",
        "train",
    ]
    assert set(bars.evaluate_all("els => els.map(e => e.dataset.status)")) == {"completed"}
    nodes = page.locator("svg#graph g.node")
    expect(nodes).to_have_count(3)
    assert set(nodes.evaluate_all("els => els.map(e => e.dataset.status)")) == {"completed"}
    expect(page.locator("svg#graph path.edge")).to_have_count(2)
    expect(page.locator("table#steps tr[data-step]")).to_have_count(3)
    signed_in.shoot("run-completed")


def test_a_running_steps_log_follows_without_a_reload(
    signed_in: BrowserSession, live: Served, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    run_id = live.submit("slow", release=str(release))
    live.wait_status(run_id, "running")
    signed_in.goto(f"/runs/{run_id}")
    page = signed_in.page
    page.evaluate("window.stillTheSamePage = true")
    log = page.locator("pre#log-text")
    expect(log).to_contain_text("line 1", timeout=SHOWS)
    expect(log).not_to_contain_text("line 2")
    signed_in.shoot("run-log-following")
    release.touch()
    expect(log).to_contain_text("line 2", timeout=SHOWS)
    assert page.evaluate("window.stillTheSamePage") is True
    live.wait_status(run_id, "completed")
    expect(page.locator("#run-status")).to_have_attribute("data-status", "completed", timeout=SHOWS)


def test_a_run_is_canceled_from_its_page(
    signed_in: BrowserSession, live: Served, tmp_path: Path
) -> None:
    run_id = live.submit("slow", release=str(tmp_path / "never"))
    live.wait_status(run_id, "running")
    signed_in.goto(f"/runs/{run_id}")
    page = signed_in.page
    expect(page.locator("pre#log-text")).to_contain_text("line 1", timeout=SHOWS)
    page.click("form#cancel-form button#cancel")
    status = page.locator("#run-status")
    expect(status).to_have_attribute("data-status", "canceled", timeout=SHOWS)
    expect(status).to_contain_text("canceled")
    assert live.wait_status(run_id, "canceled")["status"] == "canceled"
    expect(page.locator("form#cancel-form")).to_have_count(0, timeout=SHOWS)
    signed_in.shoot("run-canceled")


def schedule(live: Served, name: str) -> dict:
    """The schedule as ``pipesched schedules --json`` has it."""
    done = live.project.cli("schedules", "--json")
    assert done.returncode == 0, done.stderr
    return next(s for s in json.loads(done.stdout) if s["name"] == name)


def test_a_schedule_is_disabled_and_enabled_from_the_schedules_page(
    signed_in: BrowserSession, live: Served
) -> None:
    signed_in.goto("/schedules")
    page = signed_in.page
    row = page.locator('table#schedules tr[data-schedule="nightly"]')
    expect(row).to_have_attribute("data-enabled", "true")
    expect(row.locator("td.zone")).to_contain_text("Europe/Berlin")
    expect(row.locator("td.description")).to_contain_text(re.compile(r"\w"))
    signed_in.shoot("schedules")

    row.locator('button[name="action"][value="disable"]').click()
    expect(row).to_have_attribute("data-enabled", "false", timeout=SHOWS)
    assert wait_until(lambda: schedule(live, "nightly")["enabled"] is False, timeout=15)
    signed_in.shoot("schedules-nightly-disabled")

    row.locator('button[name="action"][value="enable"]').click()
    expect(row).to_have_attribute("data-enabled", "true", timeout=SHOWS)
    assert wait_until(lambda: schedule(live, "nightly")["enabled"] is True, timeout=15)


def test_schedule_pages_show_fires_and_the_watched_folder(signed_in: BrowserSession) -> None:
    signed_in.goto("/schedules/nightly")
    expect(signed_in.page.locator("table#fires")).to_be_attached()
    signed_in.shoot("schedule-nightly")
    signed_in.goto("/schedules/drops")
    expect(signed_in.page.locator("#watched-folder")).to_contain_text("inbox")
    expect(signed_in.page.locator("ul#pending-files")).to_be_attached()
    expect(signed_in.page.locator("ul#handled-files")).to_be_attached()
    signed_in.shoot("schedule-drops")


def test_a_metric_chart_has_a_point_per_run(signed_in: BrowserSession, live: Served) -> None:
    logged = {live.submit("chain", quality=q): q for q in (0.61, 0.72, 0.83)}
    for run_id in logged:
        live.wait_status(run_id, "completed")
    signed_in.goto("/pipelines")
    expect(signed_in.page.locator('table#pipelines tr[data-pipeline="chain"]')).to_be_visible()
    signed_in.shoot("pipelines")

    signed_in.goto("/pipelines/chain?metric=accuracy")
    points = signed_in.page.locator(
        ", ".join(f'svg#metric-chart circle.point[data-run-id="{run_id}"]' for run_id in logged)
    )
    expect(points).to_have_count(len(logged))
    drawn = dict(
        points.evaluate_all("els => els.map(e => [e.dataset.runId, Number(e.dataset.value)])")
    )
    assert {run_id: drawn.get(run_id) for run_id in logged} == logged
    signed_in.shoot("pipeline-chain-accuracy")


def test_the_models_page_lists_models(signed_in: BrowserSession) -> None:
    signed_in.goto("/models")
    expect(signed_in.page.locator('table#models tr[data-model="chain-model"]')).to_be_visible()
    signed_in.shoot("models")


def test_logging_out_ends_the_session(signed_in: BrowserSession) -> None:
    signed_in.page.click("form#logout-form button#logout")
    signed_in.page.wait_for_url(re.compile(r"/login"))
    signed_in.goto("/schedules")
    signed_in.page.wait_for_url(re.compile(r"/login\?next=(%2F|/)schedules"))


def test_revoking_a_token_ends_its_sessions(browser: BrowserSession, live: Served) -> None:
    created = live.project.cli("token", "create", "short-lived")
    assert created.returncode == 0, created.stderr
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{live.origin}/login")
        page.fill("#token", created.stdout.strip().splitlines()[-1])
        page.click("#login")
        page.wait_for_url(re.compile(r"/runs$"))
        revoked = live.project.cli("token", "revoke", "short-lived")
        assert revoked.returncode == 0, revoked.stderr
        page.goto(f"{live.origin}/models")
        page.wait_for_url(re.compile(r"/login\?next=(%2F|/)models"))
    finally:
        context.close()


def test_every_page_of_the_nav_loads_from_the_daemon_alone(signed_in: BrowserSession) -> None:
    signed_in.goto("/")
    for section in ("runs", "pipelines", "schedules", "models"):
        signed_in.page.click(f'nav a[href="/{section}"]')
        signed_in.page.wait_for_url(re.compile(f"/{section}$"))
        signed_in.page.wait_for_load_state("networkidle")
    signed_in.recorder.assert_same_origin()
    signed_in.recorder.assert_no_console_errors()
