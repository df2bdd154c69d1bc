"""Read-only database connections for the server's worker threads, one per thread, opened on first use.

A ``sqlite3`` connection must stay in the thread that opened it, and reconnecting to PostgreSQL for
every request would cost more than most pages; each worker thread therefore keeps its own reader.
"""

from __future__ import annotations

import threading

from engine.store.readmodel import Reader

__all__ = ["ReaderPool"]


class ReaderPool:
    """One :class:`Reader` per thread on the same database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self._opened: list[Reader] = []
        self._lock = threading.Lock()

    def get(self) -> Reader:
        """This thread's reader."""
        reader: Reader | None = getattr(self._local, "reader", None)
        if reader is None:
            reader = Reader(self.url)
            self._local.reader = reader
            with self._lock:
                self._opened.append(reader)
        return reader

    def close(self) -> None:
        """Close every reader (at shutdown)."""
        with self._lock:
            for reader in self._opened:
                try:
                    reader.close()
                except Exception:  # a connection already gone needs no closing
                    pass
            self._opened.clear()
