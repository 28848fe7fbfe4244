"""gRPC front end of the Open Inference Protocol (grpc.aio).

The service is registered under the protocol's wire name ``inference.GRPCInferenceService``
with the messages of ``_proto/grpc_predict_v2.proto``; see that file for why its protobuf package
differs. Errors abort the call with the protocol's status code (INVALID_ARGUMENT, NOT_FOUND,
UNAVAILABLE, RESOURCE_EXHAUSTED...) and the same message the HTTP front end sends.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from ._deps import require
from .errors import InvalidRequest, ServingError
from .protocol import decode_grpc_request, encode_grpc_response
from .service import InferenceService

__all__ = ["build_grpc_server", "SERVICE_NAME"]

log = logging.getLogger("ort_core.serve")

SERVICE_NAME = "inference.GRPCInferenceService"


def _check_version(version: str) -> str:
    if version and not version.isdigit():
        raise InvalidRequest(f"model version {version!r} must be a number")
    return version


def build_grpc_server(
    service: InferenceService, host: str, port: int, max_message_bytes: int
) -> tuple[Any, int]:
    """A grpc.aio server for ``service`` bound to ``host:port`` (0: a free port); returns it
    (not started) and the bound port. Call inside the event loop that will run it."""
    grpc = require("grpc")
    from ._proto import grpc_predict_v2_pb2 as pb

    def handled(fn: Callable) -> Callable:
        @functools.wraps(fn)
        async def wrapper(request: Any, context: Any) -> Any:
            try:
                return await fn(request)
            except ServingError as exc:
                await context.abort(getattr(grpc.StatusCode, exc.grpc_code), exc.message)
            except Exception:  # noqa: BLE001 - a bug must not reach the client as a traceback
                log.exception("gRPC %s failed", fn.__name__)
                await context.abort(
                    grpc.StatusCode.INTERNAL, "internal server error; the server log has details"
                )

        return wrapper

    @handled
    async def ServerLive(request: Any) -> Any:
        return pb.ServerLiveResponse(live=service.live())

    @handled
    async def ServerReady(request: Any) -> Any:
        return pb.ServerReadyResponse(ready=service.ready())

    @handled
    async def ModelReady(request: Any) -> Any:
        _check_version(request.version)
        return pb.ModelReadyResponse(ready=service.model_ready(request.name, request.version))

    @handled
    async def ServerMetadata(request: Any) -> Any:
        return pb.ServerMetadataResponse(**service.server_metadata())

    @handled
    async def ModelMetadata(request: Any) -> Any:
        meta = service.model_metadata(request.name, _check_version(request.version))
        resp = pb.ModelMetadataResponse(
            name=meta["name"], versions=meta["versions"], platform=meta["platform"]
        )
        for key, field in (("inputs", resp.inputs), ("outputs", resp.outputs)):
            for t in meta[key]:
                field.add(name=t["name"], datatype=t["datatype"], shape=t["shape"])
        return resp

    @handled
    async def ModelConfig(request: Any) -> Any:
        cfg = service.model_config(request.name, _check_version(request.version))
        return pb.ModelConfigResponse(config=cfg)

    @handled
    async def ModelInfer(request: Any) -> Any:
        version = _check_version(request.model_version)
        tensors, outputs = decode_grpc_request(request)
        model, results = await service.infer(request.model_name, version, tensors, outputs, "grpc")
        datatypes = {t.name: t.datatype for t in model.outputs}
        return encode_grpc_response(pb, model.name, model.version, request.id, results, datatypes)

    @handled
    async def RepositoryIndex(request: Any) -> Any:
        resp = pb.RepositoryIndexResponse()
        for entry in service.index(request.ready):
            resp.models.add(**entry)
        return resp

    def check_parameters(request: Any, allowed: tuple[str, ...]) -> None:
        extra = sorted(set(request.parameters) - set(allowed))
        if extra:
            raise InvalidRequest(
                f"load/unload parameters {extra} are not supported: ort-core serve loads models "
                "only from its repository folder (no config or file overrides in requests)"
            )

    @handled
    async def RepositoryModelLoad(request: Any) -> Any:
        check_parameters(request, ())
        await service.load(request.model_name)
        return pb.RepositoryModelLoadResponse()

    @handled
    async def RepositoryModelUnload(request: Any) -> Any:
        check_parameters(request, ("unload_dependents",))
        await service.unload(request.model_name)
        return pb.RepositoryModelUnloadResponse()

    methods = {
        "ServerLive": (ServerLive, pb.ServerLiveRequest),
        "ServerReady": (ServerReady, pb.ServerReadyRequest),
        "ModelReady": (ModelReady, pb.ModelReadyRequest),
        "ServerMetadata": (ServerMetadata, pb.ServerMetadataRequest),
        "ModelMetadata": (ModelMetadata, pb.ModelMetadataRequest),
        "ModelInfer": (ModelInfer, pb.ModelInferRequest),
        "ModelConfig": (ModelConfig, pb.ModelConfigRequest),
        "RepositoryIndex": (RepositoryIndex, pb.RepositoryIndexRequest),
        "RepositoryModelLoad": (RepositoryModelLoad, pb.RepositoryModelLoadRequest),
        "RepositoryModelUnload": (RepositoryModelUnload, pb.RepositoryModelUnloadRequest),
    }
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            fn,
            request_deserializer=req_cls.FromString,
            response_serializer=lambda msg: msg.SerializeToString(),
        )
        for name, (fn, req_cls) in methods.items()
    }
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # grpc raises RuntimeError("Failed to bind ...")
        bound = 0
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port} for gRPC (address in use?)")
    return server, bound
