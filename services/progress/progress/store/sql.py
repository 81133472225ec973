"""SQL helpers shared by progress's store modules."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, cast

from sqlalchemy import ARRAY, ColumnElement, any_, bindparam
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession


def among(
    where: AsyncSession | AsyncConnection, column: Any, values: Collection[Any]
) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL `column = ANY(array)`, one parameter for them all.

    An IN list is a parameter per value: the statement's text changes with the batch and is
    hundreds of parameters long, so the driver parses it again on every batch. `where` is the
    session or connection the statement runs on.
    """
    dialect = where.dialect if isinstance(where, AsyncConnection) else where.get_bind().dialect
    if dialect.name == "postgresql":
        array = bindparam(None, list(values), type_=ARRAY(column.type))
        return cast(ColumnElement[bool], column == any_(array))
    return cast(ColumnElement[bool], column.in_(values))
