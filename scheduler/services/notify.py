"""Sending one alert event to one notify target, and ``pipesched notify test``.

A command target is an argv (no shell) that gets the event's JSON on stdin and must exit 0
within the target's timeout. A webhook target gets it as a JSON POST and must answer 2xx within
the timeout; with a secret, ``X-Pipesched-Signature: sha256=<HMAC-SHA256 of the body>`` signs
it. ``X-Pipesched-Event`` names the event and ``X-Pipesched-Delivery`` carries its id, which is
the same on every retry, so a receiver can drop a repeat. Secret references in the target are
resolved here, when sending, and never appear in an error or a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import signal
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scheduler.core.clock import SYSTEM_CLOCK, Clock
from scheduler.core.secrets import SecretMissing, mask_secrets, resolve_secrets
from scheduler.definitions.operating import NotifyTarget
from scheduler.store.outbox import event_text, new_event

RETRY_BASE_SECONDS = 1.0
RETRY_MAX_SECONDS = 300.0
ERROR_CHARS = 300  # of a receiver's answer or a command's stderr, kept as the reason


class SendFailed(Exception):
    """One attempt did not deliver; the message says why (no secret values)."""


def describe_target(target: NotifyTarget) -> str:
    """What a user recognises in the config, secret references masked."""
    if target.command is not None:
        return "command " + " ".join(mask_secrets(part) for part in target.command)
    return "webhook " + mask_secrets(target.webhook or "")


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones: 1, 2, 4 ... capped."""
    return float(min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS))


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def send(target: NotifyTarget, payload: str, *, base: Path | None = None) -> None:
    """Deliver ``payload`` (an event's JSON) to ``target`` once; SendFailed says why not."""
    try:
        if target.command is not None:
            argv = [resolve_secrets(part, base=base) for part in target.command]
            await _run_command(argv, payload, target.timeout)
        else:
            url = resolve_secrets(target.webhook or "", base=base)
            secret = None if target.secret is None else resolve_secrets(target.secret, base=base)
            await asyncio.to_thread(_post, url, payload, secret, target.timeout)
    except SecretMissing as exc:
        raise SendFailed(exc.message) from None


async def _run_command(argv: list[str], payload: str, timeout: float) -> None:
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own group: a timeout stops what it started too
        )
    except OSError as exc:
        raise SendFailed(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from None
    try:
        _, stderr = await asyncio.wait_for(process.communicate(payload.encode() + b"\n"), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        raise SendFailed(f"timed out after {timeout:g} s") from None
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        raise
    if process.returncode != 0:
        tail = stderr.decode(errors="replace").strip()[-ERROR_CHARS:]
        raise SendFailed(f"exit status {process.returncode}" + (f": {tail}" if tail else ""))


def _post(url: str, payload: str, secret: str | None, timeout: float) -> None:
    body = payload.encode()
    event = json.loads(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "pipesched",
        "X-Pipesched-Event": str(event.get("event", "")),
        "X-Pipesched-Delivery": str(event.get("id", "")),
    }
    if secret is not None:
        headers["X-Pipesched-Signature"] = signature(secret, body)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        text = exc.read(ERROR_CHARS).decode(errors="replace").strip()
        raise SendFailed(f"HTTP {exc.code}" + (f": {text}" if text else "")) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SendFailed(f"cannot reach the webhook: {reason}") from None
    if not 200 <= status < 300:
        raise SendFailed(f"HTTP {status}")


@dataclass(frozen=True)
class TestResult:
    target: str
    ok: bool
    reason: str | None


def sample_event(event: str, clock: Clock = SYSTEM_CLOCK) -> dict[str, Any]:
    return new_event(
        event,
        clock.now(),
        message=f"a test {event} event from pipesched notify test",
        pipeline="example",
        schedule="example-nightly",
        run_id="00000000000000-test",
        status=event,
        reason="test",
        test=True,
    )


async def test_targets(
    targets: Sequence[NotifyTarget], event: str, *, base: Path | None = None
) -> list[TestResult]:
    """Send one sample ``event`` to every target at once (no retries): what became of each."""
    payload = event_text(sample_event(event))

    async def one(target: NotifyTarget) -> TestResult:
        try:
            await send(target, payload, base=base)
        except SendFailed as exc:
            return TestResult(describe_target(target), False, str(exc))
        return TestResult(describe_target(target), True, None)

    return list(await asyncio.gather(*(one(target) for target in targets)))
