"""Imports of the optional packages, each with the extra that provides it."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtra

_EXTRA = {
    "starlette": "serve",
    "uvicorn": "serve",
    "grpc": "serve",
    "prometheus_client": "serve",
    "ray": "ray",
}
_PIP_NAME = {"grpc": "grpcio", "prometheus_client": "prometheus-client", "ray": "ray[data,serve]"}


def require(module: str, feature: str = "ort-core serve") -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtra` saying which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRA.get(top, "serve")
        raise MissingExtra(
            f"{feature} needs the Python package {_PIP_NAME.get(top, top)!r}, which is not "
            f"installed ({exc}); install the {extra!r} extra: pip install 'ort-core[{extra}]'"
        ) from exc
