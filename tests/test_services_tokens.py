"""API tokens: shown once, stored hashed, checked in constant time, revocable — on every backend."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from scheduler.core.errors import NotFound, PipeschedError
from scheduler.services.tokens import create_token, list_tokens, revoke_token, verify_token
from scheduler.store import Store
from scheduler.store.models import TokenRow
from tests.projects import make_project


def test_created_token_verifies_as_its_name(store: Store) -> None:
    token = create_token(store, "ci")
    assert token.startswith("pst_")
    assert verify_token(store, token) == "ci"


def test_missing_malformed_and_wrong_tokens_are_refused(store: Store) -> None:
    token = create_token(store, "ci")
    wrong_secret = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert verify_token(store, None) is None
    assert verify_token(store, "") is None
    assert verify_token(store, "Bearer " + token) is None
    assert verify_token(store, wrong_secret) is None
    assert verify_token(store, "pst_000000000000_" + "x" * 43) is None


def test_revoked_token_is_refused(store: Store) -> None:
    token = create_token(store, "ci")
    revoke_token(store, "ci")
    assert verify_token(store, token) is None


def test_the_store_keeps_a_hash_never_the_secret(store: Store) -> None:
    token = create_token(store, "ci")
    with store.engine.connect() as conn:
        row = conn.execute(select(TokenRow)).one()
    # The secret is everything after "pst_<id>_": it may itself hold "_".
    secret = token.split("_", 2)[2]
    assert all(secret not in str(value) for value in row)
    assert len(row.token_hash) == 64


def test_a_live_name_is_unique_but_a_revoked_name_can_be_reused(store: Store) -> None:
    first = create_token(store, "ci")
    with pytest.raises(PipeschedError, match="exists"):
        create_token(store, "ci")
    revoke_token(store, "ci")
    second = create_token(store, "ci")
    assert verify_token(store, first) is None
    assert verify_token(store, second) == "ci"


def test_revoking_an_unknown_token_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        revoke_token(store, "nobody")


def test_list_shows_revocation_and_last_use_but_no_secret(store: Store) -> None:
    used = create_token(store, "used")
    create_token(store, "idle")
    revoke_token(store, "idle")
    verify_token(store, used)
    listed = {t["name"]: t for t in list_tokens(store)}
    assert listed["used"]["revoked"] is False and listed["used"]["last_used_at"] is not None
    assert listed["idle"]["revoked"] is True and listed["idle"]["last_used_at"] is None
    assert set(listed["used"]) == {"name", "created_at", "last_used_at", "revoked"}


def test_bad_token_name_is_refused(store: Store) -> None:
    with pytest.raises(PipeschedError, match="bad token name"):
        create_token(store, "has space")


def test_cli_prints_the_token_alone_on_the_last_line_then_lists_and_revokes(tmp_path) -> None:
    project = make_project(tmp_path)
    created = project.cli("token", "create", "ci")
    assert created.returncode == 0, created.stderr
    token = created.stdout.splitlines()[-1]
    assert token == token.strip() and token.startswith("pst_")
    with project.store() as store:
        assert verify_token(store, token) == "ci"
    listed = project.cli("token", "list", "--json")
    assert [t["name"] for t in json.loads(listed.stdout)] == ["ci"]
    assert token not in listed.stdout
    assert project.cli("token", "revoke", "ci").returncode == 0
    with project.store() as store:
        assert verify_token(store, token) is None
    table = project.cli("token", "list", "--no-headers").stdout.split()
    assert table[0] == "ci" and table[-1] == "revoked"


def test_cli_revoke_of_unknown_token_exits_1_with_one_line(tmp_path) -> None:
    project = make_project(tmp_path)
    result = project.cli("token", "revoke", "nobody")
    assert result.returncode == 1
    assert result.stderr.startswith("error: no live token named 'nobody'")
    assert "Traceback" not in result.stderr
