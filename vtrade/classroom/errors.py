"""The one error the classroom domain raises on purpose: a refused command or setting."""

from __future__ import annotations

from vtrade.core.errors import Fix, VtradeError


class ClassroomError(VtradeError, ValueError):
    """A class command or setting was refused; nothing was changed.

    ``str(err)`` is a sentence a teacher or student can read (the UI shows it as text);
    ``code`` is for programs: the join endpoint counts ``"wrong_code"`` refusals per address,
    a test asserts on it. Codes: ``wrong_code``, ``name_taken``, ``registration_closed``,
    ``locked``, ``out_of_range``, ``not_teacher``, ``bad_transition``, ``bad_text``,
    ``unknown_student``, ``note_required``.

    >>> err = ClassroomError("not_teacher", "Only the class's teacher can start trading")
    >>> err.code, str(err)
    ('not_teacher', "Only the class's teacher can start trading")
    """

    def __init__(self, code: str, message: str, *, fix: Fix | None = None) -> None:
        self.code = code
        super().__init__(message, fix=fix)

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Picklable across processes (a worker pool) with its code.
        return type(self), (self.code, super().__str__())
