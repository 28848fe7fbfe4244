"""The public API is curated: ``ort_core.__all__`` is exactly what it offers, and onnxruntime's
everyday names are there with the same meaning."""

import enum

import ort_core

EXPECTED = {
    "AdapterFormat",
    "EpAssignedNode",
    "EpAssignedSubgraph",
    "ExecutionMode",
    "ExecutionOrder",
    "GraphOptimizationLevel",
    "IOBinding",
    "InferenceSession",
    "LoraAdapter",
    "ModelMetadata",
    "NodeArg",
    "OrtAllocatorType",
    "OrtArenaCfg",
    "OrtDevice",
    "OrtDeviceMemoryType",
    "OrtDeviceVendorId",
    "OrtEpAssignedNode",
    "OrtEpAssignedSubgraph",
    "OrtEpDevice",
    "OrtExecutionProviderDevicePolicy",
    "OrtHardwareDevice",
    "OrtHardwareDeviceType",
    "OrtMemType",
    "OrtMemoryInfo",
    "OrtMemoryInfoDeviceType",
    "OrtSparseFormat",
    "OrtValue",
    "RunOptions",
    "SessionIOBinding",
    "SessionOptions",
    "SparseTensor",
    "__version__",
    "copy_tensors",
    "create_and_register_allocator",
    "create_and_register_allocator_v2",
    "disable_telemetry_events",
    "enable_telemetry_events",
    "errors",
    "get_all_providers",
    "get_available_providers",
    "get_build_info",
    "get_device",
    "get_ep_devices",
    "get_provider_availability",
    "get_version_string",
    "has_collective_ops",
    "preload_dlls",
    "print_debug_info",
    "register_execution_provider_library",
    "set_default_logger_callback",
    "set_default_logger_severity",
    "set_default_logger_verbosity",
    "set_global_thread_pool_sizes",
    "set_seed",
    "unregister_execution_provider_library",
}


def test_all_is_curated():
    assert set(ort_core.__all__) == EXPECTED
    for name in ort_core.__all__:
        assert hasattr(ort_core, name), name
    public = {n for n in dir(ort_core) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(ort_core, n)).__name__ == "module"}
    assert public - modules <= EXPECTED, public - modules - EXPECTED


def test_onnxruntime_enum_values():
    L = ort_core.GraphOptimizationLevel
    assert (L.ORT_DISABLE_ALL, L.ORT_ENABLE_BASIC, L.ORT_ENABLE_EXTENDED, L.ORT_ENABLE_ALL) == (
        0,
        1,
        2,
        99,
    )
    assert isinstance(L.ORT_ENABLE_ALL, enum.IntEnum)
    assert ort_core.ExecutionMode.ORT_SEQUENTIAL == 0 and ort_core.ExecutionMode.ORT_PARALLEL == 1


def test_error_names_match_onnxruntime():
    for name in (
        "Fail",
        "InvalidArgument",
        "NoSuchFile",
        "NoModel",
        "EngineError",
        "RuntimeException",
        "InvalidProtobuf",
        "ModelLoaded",
        "NotImplemented",
        "InvalidGraph",
        "EPFail",
    ):
        cls = getattr(ort_core.errors, name)
        assert issubclass(cls, ort_core.errors.OrtError)


def test_session_options_defaults_like_onnxruntime():
    so = ort_core.SessionOptions()
    assert so.graph_optimization_level == ort_core.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert so.intra_op_num_threads == 0 and so.enable_profiling is False
    assert so.profile_file_prefix == "onnxruntime_profile_"
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    assert so.get_session_config_entry("session.disable_cpu_ep_fallback") == "1"
    assert ort_core.get_device() in ("CPU", "GPU")
