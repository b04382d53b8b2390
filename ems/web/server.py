"""Serving the console with uvicorn: in the foreground (``ems serve``) or in a thread of the
controller's process (``ems run --http``).

The listening socket is bound first, by us, so a port in use is a clear error before anything
else starts (uvicorn would log it and exit the process from its thread).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time

REQUIRED = ("fastapi", "uvicorn", "jinja2", "argon2", "multipart")


def missing_web_extra() -> str | None:
    """The first package of the ``web`` extra that is not installed, or None."""
    import importlib

    for name in REQUIRED:
        try:
            importlib.import_module(name)
        except ImportError:
            return name
    return None


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) as (host, port); ValueError naming the problem."""
    host, separator, port = text.rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); OSError (port in use, no such address) otherwise."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _server(app, sock: socket.socket):
    import uvicorn

    class Server(uvicorn.Server):
        """SIGINT and SIGTERM end the server gracefully and the process with 0 (uvicorn would
        raise the signal again after its shutdown, and the process would die of it)."""

        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():  # inside ems run: the controller owns signals
                yield
                return
            previous = {number: signal.signal(number, self.handle_exit) for number in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for number, handler in previous.items():
                    signal.signal(number, handler)

    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, server_header=False)
    return Server(config)


def serve_forever(app, sock: socket.socket) -> None:
    """Serve until SIGINT or SIGTERM (uvicorn's own handlers, in the main thread)."""
    _server(app, sock).run(sockets=[sock])


class ConsoleThread:
    """The console served from a daemon thread; ``stop()`` lets requests under way finish."""

    def __init__(self, app, sock: socket.socket):
        self.app = app
        self.sock = sock
        self.server = _server(app, sock)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, name="console", daemon=True)

    def start(self, timeout_s: float = 10.0) -> ConsoleThread:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            raise RuntimeError("the console did not start")
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout_s)
        self.sock.close()
