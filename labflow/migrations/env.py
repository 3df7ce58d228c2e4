from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

import labflow.models  # noqa: F401  (registers every table on the metadata)
from labflow.models import metadata

url = context.config.get_main_option("sqlalchemy.url")


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (given := context.config.attributes.get("connection")) is not None:
    run(given)
else:
    assert url, "sqlalchemy.url must be set"
    with create_engine(url).connect() as conn:
        run(conn)
