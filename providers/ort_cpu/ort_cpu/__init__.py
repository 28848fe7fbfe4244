"""ort-cpu: the numpy CPU execution provider of ort-core."""

__version__ = "0.1.0"
