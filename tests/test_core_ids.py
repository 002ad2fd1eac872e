"""Run ids: fixed width, Crockford base32, string order = time order, forgiving when typed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from scheduler.core.ids import (
    ALPHABET,
    ID_LENGTH,
    id_time,
    is_id_prefix,
    new_run_id,
    normalize_id,
    prefix_bounds,
)

moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(3000, 1, 1), timezones=st.just(UTC)
)


def floor_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@given(moments, moments)
def test_string_order_is_time_order(a: datetime, b: datetime) -> None:
    if floor_ms(a) < floor_ms(b):
        assert new_run_id(a) < new_run_id(b)
    elif floor_ms(a) > floor_ms(b):
        assert new_run_id(a) > new_run_id(b)


@given(moments)
def test_ids_are_thirteen_crockford_characters(moment: datetime) -> None:
    run_id = new_run_id(moment)
    assert len(run_id) == ID_LENGTH == 13
    assert set(run_id) <= set(ALPHABET)
    assert not set(run_id) & set("ilou")


@given(moments)
def test_id_encodes_its_creation_time_to_the_millisecond(moment: datetime) -> None:
    assert id_time(new_run_id(moment)) == floor_ms(moment)


def test_ids_made_in_one_millisecond_differ() -> None:
    moment = datetime(2026, 11, 25, 13, 2, 14, 123456, tzinfo=UTC)
    ids = {new_run_id(moment) for _ in range(200)}
    assert len(ids) == 200
    assert len({run_id[:9] for run_id in ids}) == 1


def test_aware_times_in_other_zones_give_the_same_time_part() -> None:
    moment = datetime(2026, 11, 25, 13, 2, 14, tzinfo=UTC)
    elsewhere = moment.astimezone(timezone(timedelta(hours=-7)))
    assert new_run_id(moment)[:9] == new_run_id(elsewhere)[:9]


def test_typed_ids_are_normalized_like_crockford_decoding() -> None:
    assert normalize_id(" 01KAXQ-4M7B ") == "01kaxq4m7b"
    assert normalize_id("O1L") == "011"
    assert normalize_id("i") == "1"


def test_prefixes_outside_the_alphabet_are_not_id_prefixes() -> None:
    assert is_id_prefix("01ka")
    assert not is_id_prefix("")
    assert not is_id_prefix("01ku")
    assert not is_id_prefix("0" * (ID_LENGTH + 1))


@given(moments, st.integers(min_value=1, max_value=ID_LENGTH))
def test_prefix_bounds_enclose_every_id_with_that_prefix(moment: datetime, size: int) -> None:
    run_id = new_run_id(moment)
    low, high = prefix_bounds(run_id[:size])
    assert low <= run_id <= high
    assert len(low) == len(high) == ID_LENGTH
