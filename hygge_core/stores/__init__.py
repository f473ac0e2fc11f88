"""Built-in stores. Importing this package registers them."""

from hygge_core.stores import delta, parquet  # noqa: F401
