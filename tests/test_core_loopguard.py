"""scheduler.core.loopguard: the not-on-the-loop guard fires only under its variable and only on
a thread that runs an event loop; run_blocking keeps the order calls were handed over in."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from scheduler.core.loopguard import (
    ENV_VAR,
    STORE_THREAD_NAME,
    BlockingOnLoop,
    assert_off_loop,
    run_blocking,
    run_parallel,
    submit_blocking,
)
from scheduler.definitions.fingerprint import path_manifest, source_tree_hash
from scheduler.store import Store


@pytest.fixture
def guard_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "1")


@pytest.fixture
def store(tmp_path: Path):
    with Store.open(f"sqlite:///{tmp_path}/pipesched.db") as opened:
        yield opened


def test_the_guard_is_off_without_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)

    async def on_loop() -> None:
        assert_off_loop("anything")

    asyncio.run(on_loop())


def test_the_guard_fires_on_a_running_loop_only(guard_on: None) -> None:
    assert_off_loop("no loop on this thread")  # plain code: fine

    async def on_loop() -> None:
        with pytest.raises(BlockingOnLoop, match="a store call"):
            assert_off_loop("a store call")
        await run_blocking(assert_off_loop, "on the store's thread")
        await run_parallel(assert_off_loop, "in a worker thread")

    asyncio.run(on_loop())


# The Store facade's methods call assert_off_loop; a tree where they do not yet fails this test
# as expected (strict), rather than passing quietly.
STORE_ASSERTS = any(
    "assert_off_loop(" in path.read_text()
    for path in (Path(__file__).parent.parent / "scheduler" / "store").glob("*.py")
)


@pytest.mark.xfail(not STORE_ASSERTS, reason="the store facade does not assert yet", strict=True)
def test_a_store_call_on_a_running_loop_raises(guard_on: None, store: Store) -> None:
    async def on_loop() -> None:
        with pytest.raises(BlockingOnLoop):
            store.list_runs()
        assert await run_blocking(store.list_runs) == []

    asyncio.run(on_loop())


def test_hashing_sources_on_a_running_loop_raises(guard_on: None, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('hi')\n")

    async def on_loop() -> None:
        with pytest.raises(BlockingOnLoop):
            source_tree_hash(tmp_path)
        with pytest.raises(BlockingOnLoop):
            path_manifest(tmp_path)
        assert await run_parallel(source_tree_hash, tmp_path) == source_tree_hash_off_loop
        assert await run_parallel(path_manifest, tmp_path) == [("train.py", *_stat(tmp_path))]

    source_tree_hash_off_loop = source_tree_hash(tmp_path)
    asyncio.run(on_loop())


def _stat(folder: Path) -> tuple[int, int]:
    st = (folder / "train.py").stat()
    return st.st_size, st.st_mtime_ns


def test_run_blocking_keeps_the_order_calls_were_handed_over_in() -> None:
    """A slow call handed over first still finishes before a quick one handed over after it,
    even from another task: the store's thread is one thread, first in, first out."""
    done: list[str] = []
    threads: set[str] = set()

    def record(name: str, pause: float) -> str:
        threads.add(threading.current_thread().name)
        time.sleep(pause)
        done.append(name)
        return name

    async def main() -> list[str]:
        early = submit_blocking(record, "slow", 0.2)  # handed over by plain code, not awaited
        quick = asyncio.ensure_future(run_blocking(record, "quick", 0.0))
        results = [await quick, await early]
        return results

    assert asyncio.run(main()) == ["quick", "slow"]
    assert done == ["slow", "quick"]
    assert len(threads) == 1 and threads.pop().startswith(STORE_THREAD_NAME)


def test_run_blocking_hands_back_the_error() -> None:
    def fail() -> None:
        raise ValueError("no")

    async def main() -> None:
        with pytest.raises(ValueError, match="no"):
            await run_blocking(fail)

    asyncio.run(main())
