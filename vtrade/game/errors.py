"""The one error the game domain raises on purpose: a refused input or a bad mission definition."""

from __future__ import annotations

from vtrade.core.errors import Fix, VtradeError

__all__ = ["GameError"]


class GameError(VtradeError, ValueError):
    """An input was refused or a mission definition is invalid; nothing was changed.

    ``str(err)`` is a sentence a student or teacher can read; ``code`` is for programs.
    Codes: ``unknown_mission``, ``unknown_account``, ``not_assigned``, ``locked``,
    ``bad_transition``, ``account_left``, ``bad_assignment``, ``bad_mission`` (a definition:
    the message names the field), ``duplicate_mission``.

    >>> err = GameError("locked", "Complete 'First trade' before starting 'First sell'")
    >>> err.code, str(err)
    ('locked', "Complete 'First trade' before starting 'First sell'")
    """

    def __init__(self, code: str, message: str, *, fix: Fix | None = None) -> None:
        self.code = code
        super().__init__(message, fix=fix)

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Picklable across processes (a worker pool) with its code.
        return type(self), (self.code, super().__str__())
