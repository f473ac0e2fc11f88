"""The Dagster face of the connection pool: a thin ``ConfigurableResource`` over ``hygge_core.sql.pool``.

This is the one Dagster object in ``hygge_core``; nothing in ``hygge_core``
imports this module, so ``import hygge_core`` never loads Dagster. The resource
holds no connection itself: it names a project and one of its connections and
hands out the same process-wide pool the SQL homes use, so assets, homes and
ad-hoc queries in one process share connections. Dagster sets a resource up
once per step process (once per run with the in-process executor) and the pool
is closed at teardown. Cross-process limits come from Dagster pools sized by
``pool_size``, not from here.

    defs = dg.Definitions(assets=..., resources={"erp": SqlPoolResource(project="path/to/project", connection="erp")})
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from hygge_core.config import ConnectionConfig
from hygge_core.errors import ConfigError
from hygge_core.sql.pool import ConnectionPool, close_pool, pool_for


class SqlPoolResource(dg.ConfigurableResource):
    """A SQL connection's pool, by project path and connection name (secrets stay in the project's env vars)."""

    project: str = Field(description="path to the hygge project folder or its hygge.yml")
    connection: str = Field(description="a name under the project's connections:")

    def connection_config(self) -> ConnectionConfig:
        from hygge_core.loading import load_project

        connections = load_project(self.project).config.connections
        if self.connection not in connections:
            raise ConfigError(
                f"SqlPoolResource: {self.connection!r} is not under connections: of {self.project} (known: {', '.join(connections) or 'none'})"
            )
        return connections[self.connection]

    def get_pool(self) -> ConnectionPool:
        """The process-wide pool for this connection (opened lazily: no connection until one is acquired)."""
        return pool_for(self.connection, self.connection_config())

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        close_pool(self.connection)
