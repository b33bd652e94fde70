"""rknb: operational notebooks for site reliability engineers."""

__version__ = "0.1.0"
