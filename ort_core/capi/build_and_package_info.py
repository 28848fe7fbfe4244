"""``onnxruntime.capi.build_and_package_info``: the package name and version of this build."""

from .._version import __version__

package_name = "ort-core"
#: ort-core is not built against CUDA; its CUDA provider uses cupy's libraries
cuda_version = ""

__all__ = ["package_name", "__version__", "cuda_version"]
