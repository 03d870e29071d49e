"""The SIP port: the backup's one-shot probe, and a way to really occupy a port."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


class SipPortProbe:
    """Opens the SIP port, processes nothing, and closes it at once (``backup-sip-port-check``).

    A plain socket, bound and closed within the call: the port is free again before
    anything else runs (a Twisted listening port would close only on a later turn).
    """

    def __init__(self, interface: str = LOOPBACK) -> None:
        self.interface = interface

    def probe(self, port: int) -> str | None:
        """Try to open ``port``; ``None`` when it opened, else why it could not."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
            sock.bind((self.interface, port))
            sock.listen(1)
        except OSError as e:
            return f"cannot open SIP port {self.interface}:{port}: {e.strerror or e}"
        finally:
            sock.close()
        return None


class OccupiedPort:
    """A port really taken by a listening socket, as ``sip-port-state: in-use`` asks.

    ``port=0`` takes any free port; :attr:`port` says which.
    """

    def __init__(self, port: int, interface: str = LOOPBACK) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._socket.bind((interface, port))
            self._socket.listen(1)
        except OSError:
            self._socket.close()
            raise
        self.port: int = self._socket.getsockname()[1]

    def release(self) -> None:
        """Free the port."""
        self._socket.close()

    def __enter__(self) -> OccupiedPort:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
