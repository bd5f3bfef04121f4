"""When a failing frame ends the node: after ``limit`` frames in a row failed inside the models.

Exit codes: 0 on SIGINT/SIGTERM, 2 for a start-up fault (one FATAL line says
what and how to fix it), 3 after ``limit`` frames in a row failed, so a
supervisor (launch respawn) can restart the node.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

EXIT_STARTUP_FAULT = 2
EXIT_MODEL_FAILING = 3


@dataclass(frozen=True)
class Failure:
    what: str  # type and message
    detail: str  # the traceback the first time this error is seen, else ""
    fatal: bool  # the limit is reached: the node must exit with EXIT_MODEL_FAILING


class FailurePolicy:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_a_row = 0
        self._tracebacks_shown: set[tuple[str, str, int | None]] = set()

    def succeeded(self) -> None:
        self._in_a_row = 0

    def failed(self, exc: Exception) -> Failure:
        """One more failed frame; its traceback is shown once per distinct error."""
        self._in_a_row += 1
        # Distinct errors are told apart by type and the line that raised them, not by their varying text.
        where = traceback.extract_tb(exc.__traceback__)[-1]
        origin = (type(exc).__name__, where.filename, where.lineno)
        first_time = origin not in self._tracebacks_shown
        self._tracebacks_shown.add(origin)
        detail = "\n" + "".join(traceback.format_exception(exc)) if first_time else ""
        return Failure(f"{type(exc).__name__}: {exc}", detail, self._in_a_row >= self.limit)
