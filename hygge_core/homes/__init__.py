"""Built-in homes. Importing this package registers them.

SQL homes import their drivers lazily, so registering them needs no pyodbc.
"""

from hygge_core.homes import (
    mssql,  # noqa: F401
    parquet,  # noqa: F401
    postgres,  # noqa: F401
)
