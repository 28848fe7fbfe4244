"""Built-in optimizer passes, one module per pass; each module exposes ``PASS``."""
