"""ort-coreml: the Core ML execution provider of ort-core."""

__version__ = "0.1.0"
