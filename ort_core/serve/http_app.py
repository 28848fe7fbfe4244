"""HTTP/REST front end of the Open Inference Protocol, as a Starlette (ASGI) application.

Endpoints (KServe v2 and Triton's extensions)::

    GET  /v2/health/live                      GET  /v2/health/ready
    GET  /v2                                   (server metadata)
    GET  /v2/models/{m}[/versions/{v}]         (model metadata)
    GET  /v2/models/{m}[/versions/{v}]/ready   GET /v2/models/{m}[/versions/{v}]/config
    POST /v2/models/{m}[/versions/{v}]/infer   (JSON, or JSON + binary tensors)
    POST /v2/repository/index                  POST /v2/repository/models/{m}/load | unload
    GET  /metrics                              (Prometheus)

Errors answer ``{"error": "..."}`` with the protocol's status: 400 bad request, 404 unknown model
or version, 413 body over the limit, 503 queue full or shutting down; anything unexpected is
logged on the server and answered 500 without details.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from ._deps import require
from .errors import InvalidRequest, PayloadTooLarge, ServingError, Unavailable
from .protocol import decode_json_request, encode_json_response, parse_json_object
from .service import InferenceService

__all__ = ["build_app"]

log = logging.getLogger("ort_core.serve")

HEADER_LENGTH = "Inference-Header-Content-Length"
#: payloads from this size on are decoded and encoded on a worker thread
OFF_LOOP_BYTES = 256 * 1024


def build_app(service: InferenceService, max_request_bytes: int) -> Any:
    """The Starlette application serving ``service``; bodies over ``max_request_bytes``
    (after decompression) are refused with 413."""
    require("starlette")
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def handled(fn: Callable[[Request], Awaitable[Response]]) -> Callable:
        @functools.wraps(fn)
        async def wrapper(request: Request) -> Response:
            try:
                return await fn(request)
            except ServingError as exc:
                return error(exc.http_status, exc.message)
            except Exception:  # noqa: BLE001 - a bug must not reach the client as a traceback
                log.exception("%s %s failed", request.method, request.url.path)
                return error(500, "internal server error; the server log has the details")

        return wrapper

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise InvalidRequest(f"Content-Length {length!r} is not a number")
            if int(length) > max_request_bytes:
                raise PayloadTooLarge(
                    f"the request body has {length} bytes, over the server's limit of "
                    f"{max_request_bytes} (--max-request-bytes)"
                )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_request_bytes:
                raise PayloadTooLarge(
                    f"the request body is over the server's limit of {max_request_bytes} bytes "
                    "(--max-request-bytes)"
                )
            chunks.append(chunk)
        body = b"".join(chunks)
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("", "identity"):
            return body
        if encoding not in ("gzip", "deflate"):
            raise InvalidRequest(
                f"Content-Encoding {encoding!r} is not supported; use gzip, deflate or none"
            )
        inflater = zlib.decompressobj(zlib.MAX_WBITS | (16 if encoding == "gzip" else 0))
        try:
            out = inflater.decompress(body, max_request_bytes + 1)
        except zlib.error as exc:
            raise InvalidRequest(
                f"the {encoding} request body cannot be decompressed: {exc}"
            ) from None
        if len(out) > max_request_bytes or inflater.unconsumed_tail:
            raise PayloadTooLarge(
                f"the decompressed request body is over the server's limit of "
                f"{max_request_bytes} bytes (--max-request-bytes)"
            )
        return out

    async def json_body(request: Request) -> dict[str, Any]:
        body = await read_body(request)
        return parse_json_object(body) if body.strip() else {}

    async def off_loop(size: int, fn: Callable, *args: Any) -> Any:
        """Small payloads are (de)coded on the event loop; large ones on a thread, so one big
        JSON body does not stall every other connection."""
        if size < OFF_LOOP_BYTES:
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    def model_args(request: Request) -> tuple[str, str]:
        p = request.path_params
        version = p.get("version", "")
        if version and not version.isdigit():
            raise InvalidRequest(f"model version {version!r} must be a number")
        return p["name"], version

    @handled
    async def live(request: Request) -> Response:
        return Response(status_code=200 if service.live() else 503)

    @handled
    async def ready(request: Request) -> Response:
        return Response(status_code=200 if service.ready() else 503)

    @handled
    async def server_metadata(request: Request) -> Response:
        return JSONResponse(service.server_metadata())

    @handled
    async def model_metadata(request: Request) -> Response:
        return JSONResponse(service.model_metadata(*model_args(request)))

    @handled
    async def model_config(request: Request) -> Response:
        from google.protobuf import json_format

        cfg = service.model_config(*model_args(request))
        return JSONResponse(json_format.MessageToDict(cfg, preserving_proto_field_name=True))

    @handled
    async def model_ready(request: Request) -> Response:
        name, version = model_args(request)
        service.repository.get(name, version)  # 404 for an unknown model or version
        if not service.model_ready(name, version):
            raise Unavailable(f"model {name!r} is not ready")
        return Response(status_code=200)

    @handled
    async def infer(request: Request) -> Response:
        name, version = model_args(request)
        service.repository.get(name, version)  # an unknown model is 404 whatever the body
        header = request.headers.get(HEADER_LENGTH)
        if header is not None and not header.strip().isdigit():
            raise InvalidRequest(f"{HEADER_LENGTH} {header!r} is not a number")
        body = await read_body(request)
        req, tensors, outputs, binary = await off_loop(
            len(body), decode_json_request, body, int(header) if header is not None else None
        )
        model, results = await service.infer(name, version, tensors, outputs, "http")
        datatypes = {t.name: t.datatype for t in model.outputs}
        size = sum(getattr(v, "nbytes", 0) for v in results.values())
        payload, head = await off_loop(
            size,
            encode_json_response,
            model.name,
            model.version,
            req.get("id"),
            results,
            datatypes,
            binary,
        )
        if head is None:
            return Response(payload, media_type="application/json")
        return Response(
            payload, media_type="application/octet-stream", headers={HEADER_LENGTH: str(head)}
        )

    @handled
    async def repository_index(request: Request) -> Response:
        body = await json_body(request)
        return JSONResponse(service.index(bool(body.get("ready", False))))

    def check_parameters(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
        params = body.get("parameters") or {}
        if not isinstance(params, dict):
            raise InvalidRequest("'parameters' must be a JSON object")
        extra = sorted(set(params) - set(allowed))
        if extra:
            raise InvalidRequest(
                f"load/unload parameters {extra} are not supported: ort-core serve loads models "
                "only from its repository folder (no config or file overrides in requests)"
            )

    @handled
    async def load(request: Request) -> Response:
        check_parameters(await json_body(request), ())
        await service.load(request.path_params["name"])
        return Response(status_code=200)

    @handled
    async def unload(request: Request) -> Response:
        check_parameters(await json_body(request), ("unload_dependents",))
        await service.unload(request.path_params["name"])
        return Response(status_code=200)

    @handled
    async def metrics(request: Request) -> Response:
        if service.metrics is None:
            raise InvalidRequest("metrics are disabled on this server")
        data, content_type = service.metrics.exposition()
        return Response(data, media_type=content_type)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", "") or "error"
        if status == 404:
            detail = f"no endpoint {request.url.path}; the protocol's endpoints start with /v2"
        return error(status, detail)

    m, mv = "/v2/models/{name}", "/v2/models/{name}/versions/{version}"
    routes = [
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2", server_metadata, methods=["GET"]),
        Route(m, model_metadata, methods=["GET"]),
        Route(mv, model_metadata, methods=["GET"]),
        Route(m + "/config", model_config, methods=["GET"]),
        Route(mv + "/config", model_config, methods=["GET"]),
        Route(m + "/ready", model_ready, methods=["GET"]),
        Route(mv + "/ready", model_ready, methods=["GET"]),
        Route(m + "/infer", infer, methods=["POST"]),
        Route(mv + "/infer", infer, methods=["POST"]),
        Route("/v2/repository/index", repository_index, methods=["POST"]),
        Route("/v2/repository/models/{name}/load", load, methods=["POST"]),
        Route("/v2/repository/models/{name}/unload", unload, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
