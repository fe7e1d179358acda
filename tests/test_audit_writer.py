"""The audit writer: a bounded queue drained by one thread; a full queue waits briefly, then
counts the loss; flush and close cover every line queued before them. Deterministic: the
sink is held on an Event, never raced against a sleep."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import prodwrap as pw

WAIT = 10.0  # seconds a test waits at most for something it knows will happen


class Held:
    """A sink that holds the writer inside its first line until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.lines: list[dict[str, Any]] = []
        self.flushes = 0
        self.closes = 0

    def __call__(self, line: dict[str, Any]) -> None:
        self.entered.set()
        assert self.release.wait(WAIT)
        self.lines.append(line)

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        self.closes += 1


def held_model(max_queue: int, max_wait: float) -> tuple[pw.ProductionModel[Any, Any, Any], pw.AuditLog, Held]:
    sink = Held()
    log = pw.AuditLog(sink, max_queue=max_queue, max_wait=max_wait)
    return pw.ProductionModel(lambda x: x, audit=log), log, sink


def until(condition: Any) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.001)


def test_a_full_queue_loses_the_line_at_once_with_no_wait(caplog: pytest.LogCaptureFixture) -> None:
    model, log, sink = held_model(max_queue=2, max_wait=0.0)
    model(0)
    assert sink.entered.wait(WAIT)  # the writer holds line 0; the queue is empty
    model(1)
    model(2)  # the queue is full
    with caplog.at_level(logging.WARNING, logger="prodwrap.audit"):
        assert [model(i) for i in (3, 4, 5)] == [3, 4, 5]  # lost, and the callers have their outputs
    assert log.stats().full == 3 and log.stats().pending == 2
    assert [r.getMessage() for r in caplog.records] == ["audit Held: queue full (2 lines) for 0 s: a line was lost"]
    sink.release.set()
    assert log.close(WAIT)
    assert [line["output"] for line in sink.lines] == [0, 1, 2]
    stats = log.stats()
    assert (stats.written, stats.lost, stats.full, stats.pending) == (3, 3, 3, 0)


def test_a_full_queue_blocks_the_caller_briefly_then_counts_the_loss() -> None:
    model, log, sink = held_model(max_queue=1, max_wait=0.05)
    model(0)
    assert sink.entered.wait(WAIT)
    model(1)
    began = time.monotonic()
    model(2)
    assert time.monotonic() - began >= 0.05
    assert log.stats().full == 1
    sink.release.set()
    log.close(WAIT)
    assert [line["output"] for line in sink.lines] == [0, 1]


def test_a_caller_waiting_for_room_gets_it_when_the_writer_moves_on() -> None:
    model, log, sink = held_model(max_queue=1, max_wait=WAIT)
    model(0)
    assert sink.entered.wait(WAIT)
    model(1)
    caller = threading.Thread(target=model, args=(2,))
    caller.start()
    until(lambda: log._writer.waiting)  # the caller waits for room
    sink.release.set()
    caller.join(WAIT)
    assert not caller.is_alive()
    assert log.close(WAIT)
    assert [line["output"] for line in sink.lines] == [0, 1, 2]
    assert log.stats().lost == 0


def test_flush_covers_every_line_queued_before_it_and_flushes_the_sink() -> None:
    model, log, sink = held_model(max_queue=100, max_wait=0.0)
    sink.release.set()
    for i in range(50):
        model(i)
    assert log.flush(WAIT)
    assert len(sink.lines) == 50 and sink.flushes >= 1
    log.close(WAIT)
    assert sink.closes == 1
    log.close(WAIT)  # idempotent
    assert sink.closes == 1


def test_flush_with_nothing_written_yet_returns_at_once() -> None:
    log = pw.AuditLog(lambda line: None)
    assert log.flush(0.0)
    assert log.close(0.0)


def test_close_gives_up_on_a_hung_sink_and_counts_what_it_leaves() -> None:
    model, log, sink = held_model(max_queue=100, max_wait=0.0)
    for i in range(5):
        model(i)
    assert sink.entered.wait(WAIT)
    assert log.flush(0.01) is False  # the writer is stuck in line 0
    assert log.close(0.01) is False
    stats = log.stats()
    assert stats.after_close == 4 and stats.pending == 0  # lines 1-4 were never taken
    sink.release.set()  # line 0 ends; the thread ends after it (no more lines)
    thread = log._writer.thread
    assert thread is not None
    thread.join(WAIT)
    assert not thread.is_alive()
    assert [line["output"] for line in sink.lines] == [0] and sink.closes == 1
    assert log.stats().written == 1 and log.stats().lost == 4


def test_a_raising_flush_or_close_of_the_sink_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class Brittle:
        def __call__(self, line: dict[str, Any]) -> None:
            pass

        def flush(self) -> None:
            raise RuntimeError("flush broke")

        def close(self) -> None:
            raise RuntimeError("close broke")

    log = pw.AuditLog(Brittle())
    model = pw.ProductionModel(lambda x: x, audit=log)
    model(1)
    assert log.flush(WAIT)
    assert log.close(WAIT)
    messages = [r.getMessage() for r in caplog.records if r.name == "prodwrap.audit"]
    assert any("flush() raised RuntimeError: flush broke" in m for m in messages)
    assert any("close() raised RuntimeError: close broke" in m for m in messages)
    assert log.stats().written == 1 and log.stats().lost == 0


def test_a_file_sink_appends_and_reopens_after_a_failed_write(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"earlier": true}\n', encoding="utf-8")
    log = pw.AuditLog(path)
    model = pw.ProductionModel(lambda x: x, audit=log)
    model(1)
    assert log.flush(WAIT)
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2  # flushed: readable now
    sink = log._writer.sink
    real = sink._file  # type: ignore[attr-defined]

    class Full:
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            real.close()

    sink._file = Full()  # type: ignore[attr-defined]
    model(2)  # lost: the write fails, and the file is closed
    model(3)  # written: the file is opened again
    log.close(WAIT)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines[0] == {"earlier": True} and [line["output"] for line in lines[1:]] == [1, 3]
    assert log.stats().failed == 1


def test_an_unwritable_path_loses_lines_counted_and_predictions_go_on(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    log = pw.AuditLog(blocker / "sub" / "a.jsonl")  # a directory under a file: cannot be made
    model = pw.ProductionModel(lambda x: x, audit=log)
    assert [model(i) for i in range(3)] == [0, 1, 2]
    log.close(WAIT)
    assert log.stats().failed == 3 and log.stats().written == 0
