"""Loaded by every Python process started with this folder on PYTHONPATH (the command
line, its engine child): any attempt to reach the network is written to the file named
by LOCALSEARCH_NETGUARD_LOG and refused. Local sockets (AF_UNIX) are allowed."""

from __future__ import annotations

import os
import socket
import traceback

_LOG = os.environ.get("LOCALSEARCH_NETGUARD_LOG", "")


def _record(what: str) -> None:
    if _LOG:
        stack = "".join(traceback.format_stack(limit=8))
        with open(_LOG, "a", encoding="utf-8") as handle:
            handle.write(f"pid {os.getpid()}: {what}\n{stack}\n")


def _refuse(what: str) -> OSError:
    _record(what)
    return OSError(101, f"network refused by the test guard: {what}")


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_sendto = socket.socket.sendto


def _is_local(sock: socket.socket) -> bool:
    return sock.family == getattr(socket, "AF_UNIX", None)


def connect(self: socket.socket, address: object) -> None:
    if _is_local(self):
        return _connect(self, address)
    raise _refuse(f"connect {address!r}")


def connect_ex(self: socket.socket, address: object) -> int:
    if _is_local(self):
        return _connect_ex(self, address)
    raise _refuse(f"connect_ex {address!r}")


def sendto(self: socket.socket, *args: object) -> int:
    if _is_local(self):
        return _sendto(self, *args)  # type: ignore[arg-type]
    raise _refuse(f"sendto {args[-1]!r}")


def getaddrinfo(host: object, *args: object, **kwargs: object) -> list:
    raise _refuse(f"getaddrinfo {host!r}")


socket.socket.connect = connect  # type: ignore[method-assign]
socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
socket.socket.sendto = sendto  # type: ignore[method-assign, assignment]
socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
