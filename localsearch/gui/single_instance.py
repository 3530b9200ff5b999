"""One window per user and index: a second launch raises the first one's window and exits.

A QLockFile in the data folder says whether a window already runs (Qt notices a lock whose
process died and takes it over); the running one listens on a QLocalServer, and a second
launch that finds the lock taken connects and asks it to come to the front. The second
launch never creates a window, so never a second indexing lane writing the same index.
"""

from __future__ import annotations

import hashlib

from PySide6.QtCore import QLockFile, QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from localsearch import paths

RAISE = b"raise\n"


def server_name() -> str:
    """Per user and per data folder (a test's LOCALSEARCH_HOME gets its own)."""
    digest = hashlib.sha256(str(paths.data_dir()).encode()).hexdigest()[:16]
    return f"{paths.APP_ID}-{digest}"


class SingleInstance(QObject):
    """acquire() is True for the first instance, which then emits `activated` each time
    another launch asks for its window."""

    activated = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = QLockFile(str(paths.data_dir() / "window.lock"))
        self._lock.setStaleLockTime(0)  # held as long as its process lives, however long
        self._server: QLocalServer | None = None

    def acquire(self, timeout_ms: int = 200) -> bool:
        if self._lock.tryLock(timeout_ms):
            self._listen()
            return True
        self._ask_to_raise()
        return False

    def _listen(self) -> None:
        name = server_name()
        QLocalServer.removeServer(name)  # a socket left by a crashed instance; we hold the lock
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        server.newConnection.connect(self._on_connection)
        server.listen(name)  # if this fails, a second launch still finds the lock and exits
        self._server = server

    def _on_connection(self) -> None:
        assert self._server is not None
        while (socket := self._server.nextPendingConnection()) is not None:
            # The other launch writes as soon as it connects, so this wait is short; reading
            # here, not from a readyRead slot, leaves no per-socket closures behind.
            arrived = socket.bytesAvailable() > 0 or socket.waitForReadyRead(1000)
            if arrived and RAISE.strip() in bytes(socket.readAll().data()):
                self.activated.emit()
            socket.disconnectFromServer()
            socket.deleteLater()

    @staticmethod
    def _ask_to_raise() -> bool:
        socket = QLocalSocket()
        socket.connectToServer(server_name())
        if not socket.waitForConnected(1000):
            return False
        socket.write(RAISE)
        sent = socket.waitForBytesWritten(1000)
        socket.disconnectFromServer()
        return sent

    def release(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self._lock.unlock()
