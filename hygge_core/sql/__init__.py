"""SQL sources: ODBC drivers, authentication, a connection pool and Arrow-native reads.

Nothing in this package imports an ODBC or Azure library at import time; each
driver is imported where it is first used, and a missing one is a ``HomeError``
that names the package to install. ``resource`` (the Dagster resource) is never
imported from here, so ``hygge_core`` stays free of Dagster at load time.
"""
