"""Errors raised while reading or encoding data files."""

from __future__ import annotations

import os

__all__ = ["DataError"]


class DataError(ValueError):
    """A problem with an input file or one of its records.

    The message names the file, the record (its id, or a 1-based
    index/line number when it has no id) and, when known, the 1-based
    position inside the record, e.g.
    ``"data/x.fa: record 'seq3' position 17: invalid character 'J' for DNA"``.

    Attributes:
        reason: what is wrong.
        path: the file (``None`` for in-memory data).
        record: record id (``str``) or 1-based index/line number (``int``).
        position: 1-based position within the record, if known.
    """

    def __init__(
        self,
        reason: str,
        *,
        path: str | os.PathLike | None = None,
        record: str | int | None = None,
        position: int | None = None,
    ) -> None:
        self.reason = reason
        self.path = None if path is None else os.fspath(path)
        self.record = record
        self.position = position
        super().__init__(self._format())

    def _format(self) -> str:
        parts = []
        if self.record is not None:
            if isinstance(self.record, int):
                parts.append(f"record {self.record}")
            else:
                parts.append(f"record {self.record!r}")
        if self.position is not None:
            parts.append(f"position {self.position}")
        where = " ".join(parts)
        msg = f"{where}: {self.reason}" if where else self.reason
        return f"{self.path}: {msg}" if self.path is not None else msg

    def __reduce__(self):  # keep attributes when pickled across DataLoader workers
        return (_rebuild_data_error, (self.reason, self.path, self.record, self.position))


def _rebuild_data_error(reason, path, record, position) -> DataError:
    return DataError(reason, path=path, record=record, position=position)
