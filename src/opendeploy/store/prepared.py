"""Prepared statements for the few hottest paths: a Core statement compiled once per dialect and run on
the DBAPI cursor of the SQLAlchemy connection in use, inside its transaction.

Every agent request runs a handful of short statements. Through ``Connection.execute`` each costs tens
of microseconds of SQLAlchemy's own work (cache key, compiled-cache lookup, execution context, result
wrapping) around a few microseconds in the database; at a thousand hosts that overhead was most of the
server's time. A ``Prepared`` statement keeps what SQLAlchemy compiled — the SQL text for the dialect,
the order of its parameters, the values bound into the statement itself, and the type processors of its
parameters and result columns (JSON, say) — and does only that work per execution.

Statements must be plain SELECT / INSERT / UPDATE / DELETE without expanding (``IN``) parameters, and
an INSERT must name its columns with ``values(...)`` or take its rows from a SELECT. Rows come back as
named tuples; ``execute_many`` runs one statement for many parameter sets in a single driver call.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement


@dataclass(frozen=True)
class _Plan:
    sql: str
    positions: tuple[str, ...] | None  # parameter names in order (positional paramstyles), else None
    constants: Mapping[str, Any]  # values bound in the statement itself, processed
    processors: Mapping[str, Callable[[Any], Any]]  # parameter name -> bind processor
    row: Any  # named tuple type of result rows, or None
    columns: tuple[Any, ...]  # the result columns


class Prepared:
    """One statement, compiled on first use for each dialect."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._plans: dict[str, _Plan] = {}
        # Result processors per dialect, known from the first result's column types (None: none needed).
        self._results: dict[str, tuple[Callable[[Any], Any] | None, ...] | None] = {}

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = self._compile(dialect)
        return plan

    def _compile(self, dialect: Dialect) -> _Plan:
        compiled = self.statement.compile(dialect=dialect)
        constants: dict[str, Any] = {}
        processors: dict[str, Callable[[Any], Any]] = {}
        for bind, name in compiled.bind_names.items():
            if bind.expanding:
                raise ValueError(f"a prepared statement cannot expand {name!r}: {compiled.string}")
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
            if not bind.required:
                value = bind.effective_value
                # A str enum member goes to the driver as the plain string it stands for.
                value = str(value) if isinstance(value, str) else value
                constants[name] = processor(value) if processor is not None else value
        positions = tuple(compiled.positiontup or ()) if dialect.positional else None
        columns = list(getattr(self.statement, "exported_columns", ()))
        row = namedtuple("Row", [column.key for column in columns]) if columns else None  # type: ignore[misc]
        return _Plan(
            sql=compiled.string,
            positions=positions,
            constants=constants,
            processors=processors,
            row=row,
            columns=tuple(columns),
        )

    def _run(self, connection: Connection, params: Mapping[str, Any] | None) -> tuple[_Plan, Any]:
        plan = self._plan(connection.dialect)
        values = dict(plan.constants)
        if params:
            processors = plan.processors
            for name, value in params.items():
                processor = processors.get(name)
                values[name] = value if processor is None else processor(value)
        arguments = tuple(values[name] for name in plan.positions) if plan.positions is not None else values
        cursor = connection.connection.cursor()
        cursor.execute(plan.sql, arguments)
        return plan, cursor

    def _processors(self, dialect: Dialect, plan: _Plan, cursor: Any) -> Any:
        try:
            return self._results[dialect.name]
        except KeyError:
            pass
        found = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, description[1])
            for column, description in zip(plan.columns, cursor.description, strict=True)
        )
        processors = self._results[dialect.name] = found if any(found) else None
        return processors

    def _rows(self, connection: Connection, plan: _Plan, cursor: Any, raw: list[Sequence[Any]]) -> list[Any]:
        if not raw:
            return []
        processors = self._processors(connection.dialect, plan, cursor)
        make = plan.row._make
        if processors is None:
            return [make(row) for row in raw]
        return [
            make(
                [
                    value if process is None else process(value)
                    for process, value in zip(processors, row, strict=True)
                ]
            )
            for row in raw
        ]

    def execute(self, connection: Connection, params: Mapping[str, Any] | None = None) -> int:
        """Run the statement; how many rows it changed."""
        _, cursor = self._run(connection, params)
        try:
            return cursor.rowcount
        finally:
            cursor.close()

    def execute_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once per parameter set in ``rows``, in one call to the driver (psycopg
        pipelines them: one round trip for the lot)."""
        if not rows:
            return
        plan = self._plan(connection.dialect)
        processors = plan.processors
        arguments = []
        for params in rows:
            values = dict(plan.constants)
            for name, value in params.items():
                processor = processors.get(name)
                values[name] = value if processor is None else processor(value)
            arguments.append(
                tuple(values[name] for name in plan.positions) if plan.positions is not None else values
            )
        cursor = connection.connection.cursor()
        try:
            cursor.executemany(plan.sql, arguments)
        finally:
            cursor.close()

    def first(self, connection: Connection, params: Mapping[str, Any] | None = None) -> Any | None:
        """The first row the statement returns (a named tuple), or None."""
        plan, cursor = self._run(connection, params)
        try:
            raw = cursor.fetchone()
            return None if raw is None else self._rows(connection, plan, cursor, [raw])[0]
        finally:
            cursor.close()

    def all(self, connection: Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every row the statement returns."""
        plan, cursor = self._run(connection, params)
        try:
            return self._rows(connection, plan, cursor, cursor.fetchall())
        finally:
            cursor.close()
