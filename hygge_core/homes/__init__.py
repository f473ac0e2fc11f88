"""Built-in homes. Importing this package registers them.

SQL homes import their drivers lazily, so registering them needs no pyodbc.
"""

from hygge_core.homes import parquet  # noqa: F401
from hygge_core.homes import postgres  # noqa: F401
from hygge_core.homes import mssql  # noqa: F401
