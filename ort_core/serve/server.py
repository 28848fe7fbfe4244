"""The ``ort-core serve`` server: one event loop (in its own thread) running the HTTP front end
under uvicorn and the gRPC front end under grpc.aio, over one model repository.

    from ort_core.serve import Server
    with Server("models/", http_port=0, grpc_port=0) as server:   # 0: free ports
        print(server.http_port, server.grpc_port)

Inference runs on the schedulers' worker threads, never on the event loop. ``stop()`` is graceful:
the server stops accepting, answers the requests in flight (up to ``graceful_timeout_s``), then
drains every model's queue and ends its workers.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from ._deps import require
from .config import ServerOptions
from .errors import ModelLoadError, ServingError
from .repository import ModelRepository
from .service import InferenceService

__all__ = ["Server"]

log = logging.getLogger("ort_core.serve")


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket. Created with proto IPPROTO_TCP (socket.create_server leaves it 0):
    asyncio sets TCP_NODELAY only on accepted sockets whose proto says TCP, and without it every
    response written in two parts (headers, body) waits ~40 ms for the client's delayed ACK."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


class Server:
    """An Open Inference Protocol server over a model repository or one model file.

    Args:
        model_or_repository: a ``.onnx`` file or a repository folder (Triton's layout).
        options: :class:`~.config.ServerOptions`; keyword arguments override its fields.
    """

    def __init__(
        self,
        model_or_repository: str | Path,
        options: ServerOptions | None = None,
        **overrides: Any,
    ) -> None:
        for mod in ("starlette", "uvicorn", "grpc", "prometheus_client"):
            require(mod)
        from .metrics import Metrics

        self.options = replace(options or ServerOptions(), **overrides)
        if self.options.http_port is None and self.options.grpc_port is None:
            raise ValueError("both http_port and grpc_port are None: enable at least one")
        self.metrics = Metrics()
        self.repository = ModelRepository(model_or_repository, self.options, self.metrics)
        self.service = InferenceService(self.repository, self.metrics)
        self.http_port: int | None = None
        self.grpc_port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> Server:
        """Load every model, bind the ports and serve in a background thread.

        Raises:
            ModelLoadError: a model of the repository cannot be loaded (names each).
            OSError: a port cannot be bound.
        """
        if self._thread is not None:
            raise RuntimeError("this server was started already; create a new Server")
        failed = self.repository.load_all()
        if failed:
            self.repository.close(0)
            raise ModelLoadError(
                "models failed to load: " + "; ".join(f"{n}: {m}" for n, m in failed.items())
            )
        if not self.repository.loaded():
            raise ModelLoadError(
                "the repository holds no model; the layout is <repository>/<model>/<version>/"
                "model.onnx (or pass one .onnx file)"
            )
        sock = None
        o = self.options
        if o.http_port is not None:
            try:
                sock = _listen(o.host, o.http_port)
            except OSError as exc:
                self.repository.close(0)
                raise OSError(
                    exc.errno, f"cannot listen on {o.host}:{o.http_port} for HTTP: {exc.strerror}"
                ) from exc
            self.http_port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name="ort-core-serve", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise TimeoutError(f"the server did not start within {timeout} s")
        if self._startup_error is not None:
            self._thread.join()
            self.repository.close(0)
            raise self._startup_error
        log.info(
            "serving %s on %s (HTTP port %s, gRPC port %s)",
            ", ".join(sorted({m.name for m in self.repository.loaded()})),
            o.host,
            self.http_port,
            self.grpc_port,
        )
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop gracefully: finish in-flight requests, drain the queues, end the workers."""
        if self._thread is None:
            return
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the loop ended on its own
                pass
        self._thread.join(timeout)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Start, serve until SIGINT or SIGTERM, then stop gracefully (the CLI's loop)."""
        stop = threading.Event()
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):  # before start: a signal never finds none
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
        try:
            self.start()
            while not stop.wait(0.5):
                if self._thread is None or not self._thread.is_alive():
                    break
        finally:
            log.info("shutting down: finishing in-flight requests")
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # -- the event loop thread ---------------------------------------------------------------------
    def _run(self, sock: socket.socket | None) -> None:
        try:
            asyncio.run(self._main(sock))
        except BaseException as exc:  # noqa: BLE001 - reported to start() or logged
            if not self._ready.is_set():
                self._startup_error = exc
                self._ready.set()
            else:
                log.exception("the server's event loop failed")
        finally:
            if sock is not None:
                sock.close()

    async def _main(self, sock: socket.socket | None) -> None:
        o = self.options
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        grpc_server = None
        uv_server = uv_task = None
        try:
            if o.grpc_port is not None:
                from .grpc_server import build_grpc_server

                grpc_server, self.grpc_port = build_grpc_server(
                    self.service, o.host, o.grpc_port, o.max_request_bytes
                )
                await grpc_server.start()
            if sock is not None:
                uvicorn = require("uvicorn")
                from .http_app import build_app

                config = uvicorn.Config(
                    build_app(self.service, o.max_request_bytes),
                    log_config=None,
                    access_log=False,
                    lifespan="off",
                    timeout_graceful_shutdown=max(1, int(o.graceful_timeout_s)),
                )
                uv_server = uvicorn.Server(config)
                uv_task = asyncio.create_task(uv_server.serve(sockets=[sock]))
                while not uv_server.started:
                    if uv_task.done():
                        uv_task.result()
                        raise ServingError("the HTTP server stopped while starting")
                    await asyncio.sleep(0.01)
        except BaseException:
            if grpc_server is not None:
                await grpc_server.stop(0)
            raise
        self._ready.set()
        await self._stop_event.wait()
        self.service.shutting_down = True
        waits = []
        if uv_server is not None:
            uv_server.should_exit = True
            waits.append(uv_task)
        if grpc_server is not None:
            waits.append(grpc_server.stop(o.graceful_timeout_s))
        await asyncio.gather(*waits, return_exceptions=True)
        await asyncio.to_thread(self.repository.close, o.graceful_timeout_s)
