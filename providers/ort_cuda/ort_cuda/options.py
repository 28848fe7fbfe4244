"""The CUDA provider's options, as onnxruntime names and spells them.

onnxruntime passes provider options as strings (``providers=[("CUDAExecutionProvider", {...})]``);
:func:`parse` turns them into :class:`CudaOptions`, and rejects an unknown name or a value outside
the accepted ones with an ``InvalidArgument`` that names the option and what it accepts. Options
onnxruntime has but ort-core cannot honour are accepted only at the value that asks for nothing
(``prefer_nhwc=0``...): any other value is refused with the reason, never silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from ort_core.errors import InvalidArgument

__all__ = ["CudaOptions", "parse", "ACCEPTED"]

SIZE_MAX = 2**64 - 1


@dataclass(frozen=True)
class CudaOptions:
    device_id: int = 0
    #: bytes the provider's memory pool may hold (0: no limit; onnxruntime's SIZE_MAX)
    gpu_mem_limit: int = 0
    #: True: kNextPowerOfTwo (onnxruntime's default), False: kSameAsRequested
    arena_power_of_two: bool = True
    #: EXHAUSTIVE (benchmark every algorithm once per shape), HEURISTIC, DEFAULT
    cudnn_conv_algo_search: str = "EXHAUSTIVE"
    cudnn_conv_use_max_workspace: bool = True
    cudnn_conv1d_pad_to_nc1d: bool = False
    fuse_conv_bias: bool = False
    #: True: copies run on the compute stream (onnxruntime's default); False: on a copy stream
    #: of their own, ordered with the compute stream by events
    do_copy_in_default_stream: bool = True
    has_user_compute_stream: bool = False
    #: the address of the user's cudaStream_t (0: none)
    user_compute_stream: int = 0
    #: one stream for every run of the provider instead of one per run
    use_ep_level_unified_stream: bool = False
    enable_cuda_graph: bool = False
    use_tf32: bool = True
    enable_skip_layer_norm_strict_mode: bool = False


def _bool(name: str) -> Callable[[str], bool]:
    def parse_bool(v: str) -> bool:
        s = v.strip().lower()
        if s in ("1", "true"):
            return True
        if s in ("0", "false"):
            return False
        raise _bad(name, v, "0 or 1 (or true/false)")

    return parse_bool


def _int(name: str, lo: int = 0, hi: int = SIZE_MAX) -> Callable[[str], int]:
    def parse_int(v: str) -> int:
        try:
            n = int(v.strip(), 0)
        except ValueError:
            raise _bad(name, v, f"an integer from {lo} to {hi}") from None
        if not lo <= n <= hi:
            raise _bad(name, v, f"an integer from {lo} to {hi}")
        return n

    return parse_int


def _choice(name: str, table: Mapping[str, Any]) -> Callable[[str], Any]:
    def parse_choice(v: str) -> Any:
        key = v.strip()
        for k, out in table.items():
            if key.lower() == k.lower():
                return out
        raise _bad(name, v, " or ".join(table))

    return parse_choice


def _only(name: str, value: str, why: str) -> Callable[[str], None]:
    """An onnxruntime option ort-core accepts only at the value that asks for nothing."""

    def parse_only(v: str) -> None:
        if v.strip().lower() not in (value, "false" if value == "0" else value):
            raise InvalidArgument(
                f"CUDAExecutionProvider option {name}={v!r} is not supported: {why} "
                f"Leave it out or set it to {value}."
            )

    return parse_only


def _bad(name: str, value: str, accepted: str) -> InvalidArgument:
    return InvalidArgument(
        f"CUDAExecutionProvider option {name}={value!r} is not a valid value; it accepts {accepted}."
    )


#: name -> (field of CudaOptions or None, parser). Values as onnxruntime spells them.
ACCEPTED: dict[str, tuple[str | None, Callable[[str], Any]]] = {
    "device_id": ("device_id", _int("device_id", 0, 1 << 16)),
    "gpu_mem_limit": ("gpu_mem_limit", _int("gpu_mem_limit")),
    "arena_extend_strategy": (
        "arena_power_of_two",
        _choice(
            "arena_extend_strategy",
            {"kNextPowerOfTwo": True, "kSameAsRequested": False, "0": True, "1": False},
        ),
    ),  # fmt: skip
    "cudnn_conv_algo_search": (
        "cudnn_conv_algo_search",
        _choice(
            "cudnn_conv_algo_search",
            {
                "EXHAUSTIVE": "EXHAUSTIVE",
                "HEURISTIC": "HEURISTIC",
                "DEFAULT": "DEFAULT",
                "0": "EXHAUSTIVE",
                "1": "HEURISTIC",
                "2": "DEFAULT",
            },
        ),
    ),  # fmt: skip
    "cudnn_conv_use_max_workspace": (
        "cudnn_conv_use_max_workspace",
        _bool("cudnn_conv_use_max_workspace"),
    ),
    "cudnn_conv1d_pad_to_nc1d": ("cudnn_conv1d_pad_to_nc1d", _bool("cudnn_conv1d_pad_to_nc1d")),
    "fuse_conv_bias": ("fuse_conv_bias", _bool("fuse_conv_bias")),
    "do_copy_in_default_stream": ("do_copy_in_default_stream", _bool("do_copy_in_default_stream")),
    "has_user_compute_stream": ("has_user_compute_stream", _bool("has_user_compute_stream")),
    "user_compute_stream": ("user_compute_stream", _int("user_compute_stream")),
    "use_ep_level_unified_stream": (
        "use_ep_level_unified_stream",
        _bool("use_ep_level_unified_stream"),
    ),
    "enable_cuda_graph": ("enable_cuda_graph", _bool("enable_cuda_graph")),
    "use_tf32": ("use_tf32", _bool("use_tf32")),
    "enable_skip_layer_norm_strict_mode": (
        "enable_skip_layer_norm_strict_mode",
        _bool("enable_skip_layer_norm_strict_mode"),
    ),
    "prefer_nhwc": (
        None,
        _only(
            "prefer_nhwc",
            "0",
            "ort-core has no NHWC layout transformer; the CUDA kernels "
            "take ONNX's NCHW layout (cuDNN picks its own internal layout).",
        ),
    ),  # fmt: skip
    "tunable_op_enable": (
        None,
        _only(
            "tunable_op_enable",
            "0",
            "ort-core has no TunableOp; GEMMs use cuBLAS's "
            "heuristics and Conv uses cudnn_conv_algo_search.",
        ),
    ),  # fmt: skip
    "tunable_op_tuning_enable": (
        None,
        _only("tunable_op_tuning_enable", "0", "ort-core has no TunableOp."),
    ),
    "tunable_op_max_tuning_duration_ms": (
        None,
        _only("tunable_op_max_tuning_duration_ms", "0", "ort-core has no TunableOp."),
    ),
    "sdpa_kernel": (
        None,
        _only(
            "sdpa_kernel",
            "0",
            "ort-core's attention kernels have one implementation "
            "(cuBLAS GEMMs and a one-pass masked softmax); there is nothing to choose.",
        ),
    ),  # fmt: skip
    "gpu_external_alloc": (
        None,
        _only(
            "gpu_external_alloc",
            "0",
            "ort-core allocates from cupy's memory pool; "
            "to share memory with another library, pass its arrays through DLPack.",
        ),
    ),  # fmt: skip
    "gpu_external_free": (None, _only("gpu_external_free", "0", "see gpu_external_alloc.")),
    "gpu_external_empty_cache": (
        None,
        _only("gpu_external_empty_cache", "0", "see gpu_external_alloc."),
    ),
}


def parse(options: Mapping[str, str]) -> CudaOptions:
    """The provider's options from onnxruntime-style strings (see :data:`ACCEPTED`)."""
    unknown = sorted(set(options) - set(ACCEPTED))
    if unknown:
        raise InvalidArgument(
            f"CUDAExecutionProvider does not know the option(s) {unknown}; it accepts "
            f"{sorted(ACCEPTED)}."
        )
    values: dict[str, Any] = {}
    for name, raw in options.items():
        field_name, parser = ACCEPTED[name]
        value = parser(str(raw))
        if field_name is not None:
            values[field_name] = value
    if values.get("gpu_mem_limit") == SIZE_MAX:
        values["gpu_mem_limit"] = 0
    opts = CudaOptions(**values)
    if opts.user_compute_stream and not opts.has_user_compute_stream:
        opts = _replace(opts, has_user_compute_stream=True)
    if opts.has_user_compute_stream and not opts.user_compute_stream:
        raise InvalidArgument(
            "CUDAExecutionProvider option has_user_compute_stream=1 needs user_compute_stream, "
            "the address of a cudaStream_t (e.g. torch.cuda.current_stream().cuda_stream)."
        )
    return opts


def _replace(opts: CudaOptions, **changes: Any) -> CudaOptions:
    values = {f.name: getattr(opts, f.name) for f in fields(opts)}
    values.update(changes)
    return CudaOptions(**values)


def as_strings(opts: CudaOptions) -> dict[str, str]:
    """The options in force, as ``get_provider_options()`` reports them (onnxruntime's names)."""
    return {
        "device_id": str(opts.device_id),
        "gpu_mem_limit": str(opts.gpu_mem_limit or SIZE_MAX),
        "arena_extend_strategy": "kNextPowerOfTwo"
        if opts.arena_power_of_two
        else "kSameAsRequested",
        "cudnn_conv_algo_search": opts.cudnn_conv_algo_search,
        "cudnn_conv_use_max_workspace": str(int(opts.cudnn_conv_use_max_workspace)),
        "cudnn_conv1d_pad_to_nc1d": str(int(opts.cudnn_conv1d_pad_to_nc1d)),
        "fuse_conv_bias": str(int(opts.fuse_conv_bias)),
        "do_copy_in_default_stream": str(int(opts.do_copy_in_default_stream)),
        "has_user_compute_stream": str(int(opts.has_user_compute_stream)),
        "user_compute_stream": str(opts.user_compute_stream),
        "use_ep_level_unified_stream": str(int(opts.use_ep_level_unified_stream)),
        "enable_cuda_graph": str(int(opts.enable_cuda_graph)),
        "use_tf32": str(int(opts.use_tf32)),
        "enable_skip_layer_norm_strict_mode": str(int(opts.enable_skip_layer_norm_strict_mode)),
        "prefer_nhwc": "0",
        "tunable_op_enable": "0",
        "tunable_op_tuning_enable": "0",
        "tunable_op_max_tuning_duration_ms": "0",
        "sdpa_kernel": "0",
    }
