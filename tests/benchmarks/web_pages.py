"""Web view pages on a year of history (10^5 runs: ``web_history``), served by a real daemon on
127.0.0.1 and read with a session cookie got by logging in with a token, as a browser would.

For each page: the server's own time (its ``Server-Timing: app;dur=`` header) and the client's
round trip on a kept-alive connection, over interleaved rounds (a busy moment of the machine
weighs on every page alike). The budget is 50 ms median server time per page. The baseline,
measured in the same rounds, is ``GET /api/v1/runs?limit=20``: the JSON read of the same data.
Each page's JSON counterpart is timed beside it. A daemon without the web view gets only the
JSON figures.
"""

from __future__ import annotations

import http.client
import re
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from tests.benchmarks.figures import figure, percentile
from tests.benchmarks.web_history import (
    DROPS,
    FREQUENT,
    METRIC_PIPELINE,
    METRICS,
    RARE,
    SeededHistory,
    seeded_project,
)
from tests.daemon_harness import DaemonProcess

SIZE = 100_000
BUDGET_MS = 50.0
BASELINE = "json /runs"  # GET /api/v1/runs?limit=20
_SERVER_TIMING = re.compile(r"(?:^|,)\s*app;dur=([0-9.]+)")
_LOGIN_FORM = re.compile(r'<form id="login-form".*?</form>', re.DOTALL)
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def pages(history: SeededHistory) -> dict[str, tuple[str, str | None]]:
    """label -> (page path, the JSON read of the same data, if the API has one)."""
    run, old, metric = history.newest_real_run, history.old_run, METRICS[0]
    api = "/api/v1"
    return {
        "/runs": ("/runs", f"{api}/runs?limit=20"),
        "/runs?status=failed": ("/runs?status=failed", f"{api}/runs?status=failed&limit=20"),
        f"/runs?pipeline={METRIC_PIPELINE}": (
            f"/runs?pipeline={METRIC_PIPELINE}", f"{api}/runs?pipeline={METRIC_PIPELINE}&limit=20"
        ),
        "/runs?before=<old id>": (f"/runs?before={old}", f"{api}/runs?before={old}&limit=20"),
        f"/runs?schedule={RARE}": (f"/runs?schedule={RARE}", None),
        f"/runs?trigger=schedule:{RARE}": (f"/runs?trigger=schedule:{RARE}", None),
        "/runs?trigger=files": ("/runs?trigger=files", None),  # a kind the form offers; no run
        "/runs/<finished id>": (f"/runs/{run}", f"{api}/runs/{run}"),
        "/pipelines": ("/pipelines", f"{api}/pipelines"),
        f"/pipelines/{METRIC_PIPELINE}?metric={metric}&last=20": (
            f"/pipelines/{METRIC_PIPELINE}?metric={metric}&last=20",
            f"{api}/pipelines/{METRIC_PIPELINE}/metrics?metric={metric}&last=20",
        ),
        "/schedules": ("/schedules", f"{api}/schedules"),
        f"/schedules/{FREQUENT}": (f"/schedules/{FREQUENT}", f"{api}/schedules/{FREQUENT}/fires"),
        f"/schedules/{DROPS}": (f"/schedules/{DROPS}", f"{api}/schedules/{DROPS}/fires"),
        "/models": ("/models", f"{api}/models"),
    }  # fmt: skip


@dataclass
class Client:
    """One kept-alive connection to the daemon, with the headers that authenticate it."""

    host: str
    port: int
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def request(
        self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[http.client.HTTPResponse, bytes]:
        self.conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
        response = self.conn.getresponse()
        return response, response.read()

    def close(self) -> None:
        self.conn.close()


def _cookies(response: http.client.HTTPResponse) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or ():
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


def log_in(client: Client, token: str) -> bool:
    """Log in through the form as a browser would (its hidden fields, any cookie it set, a
    same-site Origin) and keep the session cookie on ``client``; False when the daemon serves
    no web view."""
    response, body = client.request("GET", "/login")
    if response.status == 404:
        return False
    assert response.status == 200, (response.status, body[:500])
    form = _LOGIN_FORM.search(body.decode())
    assert form, "no login form"
    fields = dict(_HIDDEN.findall(form.group(0))) | {"token": token, "next": "/runs"}
    cookies = _cookies(response)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Origin": f"http://{client.host}:{client.port}",
    }
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    response, body = client.request("POST", "/login", body=urlencode(fields), headers=headers)
    assert response.status == 303, (response.status, body[:500])
    cookies |= _cookies(response)
    assert "pipesched_session" in cookies, response.headers
    client.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return True


def _timed(client: Client, path: str) -> tuple[float, float | None]:
    """(round trip ms, the server's own ms or None) of one GET answered 200."""
    began = time.perf_counter_ns()
    response, body = client.request("GET", path)
    round_trip = (time.perf_counter_ns() - began) / 1e6
    assert response.status == 200, (path, response.status, body[:500])
    timing = _SERVER_TIMING.search(response.headers.get("Server-Timing") or "")
    return round_trip, float(timing.group(1)) if timing else None


def measure(
    history: SeededHistory, trials: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(round trips, server times) by label: ``page <path>`` for each page (when the daemon
    serves the web view) and ``json <path>`` for its JSON counterpart (``GET /api/v1/...``)."""
    project = history.project
    token = project.token(f"bench-{uuid.uuid4().hex[:6]}")
    daemon = DaemonProcess(project).start(timeout=120)
    try:
        url = urlsplit(daemon.events("api_listening")[0]["url"])
        assert url.hostname and url.port
        api = Client(url.hostname, url.port, {"Authorization": f"Bearer {token}"})
        web = Client(url.hostname, url.port)
        has_web = log_in(web, token)
        if not has_web:
            print("web_pages: the daemon serves no web view; JSON reads only", file=sys.stderr)
        targets: dict[str, tuple[Client, str]] = {}
        for label, (page, json_path) in pages(history).items():
            if json_path is not None:
                targets[f"json {label}"] = (api, json_path)
            if has_web:
                targets[f"page {label}"] = (web, page)
        for client, path in targets.values():  # once each: a failure shows before timing
            _timed(client, path)
        trips: dict[str, list[float]] = {label: [] for label in targets}
        server: dict[str, list[float]] = {label: [] for label in targets}
        for _ in range(trials):
            for label, (client, path) in targets.items():
                trip, own = _timed(client, path)
                trips[label].append(trip)
                if own is not None:
                    server[label].append(own)
        api.close()
        web.close()
    finally:
        daemon.stop()
        daemon.close()
    return trips, server


def report(trips: dict[str, list[float]], server: dict[str, list[float]]) -> list[dict]:
    """The figures (a round trip and, when the server timed itself, a server time per label)
    and, on stderr, the table: medians, p90, budget, ratio to the baseline's round trip."""
    base_trip = statistics.median(trips[BASELINE])
    base_server = statistics.median(server[BASELINE]) if server[BASELINE] else None
    figures: list[dict] = []
    lines = [f"{'web_pages (ms)':<48} {'server':>7} {'p90':>7} {'trip':>7} {'p90':>7} "
             f"{'budget':>7} {'ratio':>6}"]  # fmt: skip
    for label, samples in trips.items():
        own = server[label]
        trip = figure(f"web {label} trip", samples, baseline=base_trip,
                      baseline_name=f"{BASELINE} trip")  # fmt: skip
        trip["p90"] = percentile(samples, 0.9)
        figures.append(trip)
        over = "-"
        if own:
            spent = figure(f"web {label} server", own, baseline=base_server or base_trip,
                           baseline_name=f"{BASELINE} {'server' if base_server else 'trip'}")  # fmt: skip
            spent["p90"] = percentile(own, 0.9)
            if label.startswith("page "):
                spent["budget"] = BUDGET_MS
                over = "ok" if spent["median"] <= BUDGET_MS else "OVER"
            figures.append(spent)
        server_cells = (f"{statistics.median(own):>7.1f} {percentile(own, 0.9):>7.1f}"
                        if own else f"{'-':>7} {'-':>7}")  # fmt: skip
        lines.append(f"{label[:48]:<48} {server_cells} {trip['median']:>7.1f} "
                     f"{trip['p90']:>7.1f} {over:>7} {trip['ratio']:>5.2f}x")  # fmt: skip
    lines.append(f"budget: median server time <= {BUDGET_MS:.0f} ms per page; ratio: round "
                 f"trip / the trip of GET /api/v1/runs?limit=20 ({base_trip:.1f} ms)")  # fmt: skip
    print("\n".join(lines), file=sys.stderr)
    return figures


def main(quick: bool = False) -> list[dict]:
    trials = 10 if quick else 30
    with tempfile.TemporaryDirectory() as tmp:
        history = seeded_project(Path(tmp) / "project", SIZE)
        trips, server = measure(history, trials)
    return report(trips, server)
