"""Built-in stores. Importing this package registers them."""

from hygge_core.stores import parquet  # noqa: F401
