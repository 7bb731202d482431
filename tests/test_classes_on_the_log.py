"""Classes on the log (issue 12): commands decided, events published on ``class``, the fold
rebuilt by a new book on the same durable log, and refusals publish nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

import vtrade.classroom as vc
from vtrade.runtime.bus import open_bus
from vtrade.runtime.classes import TOPIC, ClassBook, UnknownClassError

CODE = vc.join_code(bytes(range(10)))


def _a_class(book: ClassBook) -> None:
    book.submit("econ", vc.CreateClass(0, "econ", "ms-lee", "Econ 101", CODE, vc.ClassRules(starting_cash=50_000)))
    book.submit("econ", vc.OpenRegistration(1, "ms-lee"))
    for i, name in enumerate(("Sam", "Ana", "<script>alert(1)</script>")):
        book.submit("econ", vc.Join(2 + i, CODE, name))
    book.submit("econ", vc.StartTrading(10, "ms-lee"))
    book.submit("econ", vc.PauseClock(11, "ms-lee"))


def test_a_class_survives_a_restart_of_its_durable_log(tmp_path: Path) -> None:
    path = tmp_path / "log.duckdb"
    bus = open_bus("memory://", journal=path)
    book = ClassBook(bus)
    _a_class(book)
    before = book.state("econ")
    bus.close()  # the process ends; the journal on disk is the log
    again = ClassBook(open_bus("memory://", journal=path))
    assert again.state("econ") == before
    assert [s.display_name for s in again.state("econ").active] == ["Sam", "Ana", "<script>alert(1)</script>"]
    assert again.state("econ").phase is vc.Phase.TRADING and not again.state("econ").clock_running
    again.bus.close()


def test_a_refused_command_publishes_nothing_and_a_second_book_sees_the_same_classes() -> None:
    bus = open_bus("memory://")
    book = ClassBook(bus)
    _a_class(book)
    ends = bus.end_offsets(TOPIC)
    with pytest.raises(vc.ClassroomError, match="locked"):
        book.submit("econ", vc.ChangeSettings(12, "ms-lee", vc.RulesPatch(starting_cash=1_000_000)))
    with pytest.raises(vc.ClassroomError):
        book.submit("econ", vc.Join(13, CODE, "Sam"))  # trading has started, and the name is taken
    with pytest.raises(vc.ClassroomError):
        book.submit("econ", vc.Freeze(14, "a-student"))  # not the teacher
    with pytest.raises(UnknownClassError, match="no class 'hist'"):
        book.submit("hist", vc.OpenRegistration(15, "ms-lee"))
    assert bus.end_offsets(TOPIC) == ends  # nothing was published
    reader = ClassBook(bus)  # another reader of the same log
    assert reader.classes() == ["econ"] and reader.state("econ") == book.state("econ")
