"""The version of ort-core (a leaf module, so any module can import it)."""

__version__ = "0.1.0"
