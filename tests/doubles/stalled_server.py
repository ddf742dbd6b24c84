"""A LiveKit double that accepts connections and never answers: a stalled server.

It listens on 127.0.0.1 (a free port) in a thread, accepts every connection, reads what
it is sent and never writes a byte, so a client without its own deadline waits forever.
"""

from __future__ import annotations

import selectors
import socket
import threading


class StalledServer:
    """``with StalledServer() as server``: ``server.url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="stalled-server", daemon=True)

    def __enter__(self) -> StalledServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        held: list[socket.socket] = []
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.05):
                    if key.fileobj is self._listener:
                        connection, _address = self._listener.accept()
                        connection.setblocking(False)
                        held.append(connection)
                        self.connections += 1
                        selector.register(connection, selectors.EVENT_READ)
                    else:
                        try:
                            data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        except OSError:
                            data = b""
                        if not data:
                            selector.unregister(key.fileobj)
        for connection in held:
            connection.close()
        self._listener.close()
