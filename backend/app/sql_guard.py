"""The SQL guard for model-written queries.

Two layers, each enough on its own for the common cases and together for the rest:
1. static checks on the parsed statement (sqlglot, SQLite dialect): exactly one statement, a
   SELECT or set operation (CTEs allowed), only existing tables, a LIMIT added when absent;
2. execution on a `mode=ro` connection with an authorizer that allows reads only (no ATTACH,
   PRAGMA, writes or load_extension), a progress-handler time limit, a lowered
   SQLITE_LIMIT_LENGTH and a capped fetch.
"""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from .core.database import open_readonly


class GuardError(ValueError):
    """The statement was refused before execution; the message is safe to show the model."""


class ExecutionError(RuntimeError):
    """The statement failed while running; the message is SQLite's (fed back to the model)."""


class TimeLimitError(ExecutionError):
    """The statement hit the SQL time limit: asking the model again would only wait as long again."""


ALLOWED_ROOTS = (exp.Select, exp.SetOperation)
DENIED_FUNCTIONS = {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "sqlite_compileoption_get"}


@dataclass
class CheckedSQL:
    sql: str
    tables: set[str]
    limit_added: bool
    base_sql: str = ""  # the statement as written (without an added LIMIT): what a total row count counts


def aggregate_only(tree: exp.Expression) -> bool:
    """One row by construction: a SELECT whose every output is an aggregate, without GROUP BY."""
    if not isinstance(tree, exp.Select) or tree.args.get("group") or not tree.expressions:
        return False
    return all(e.find(exp.AggFunc) is not None for e in tree.expressions)


def check_sql(sql: str, known_tables: list[str], default_limit: int = 1000) -> CheckedSQL:
    """Parse and validate one SELECT statement; return the SQL to execute."""
    text = (sql or "").strip().rstrip(";").strip()
    if not text:
        raise GuardError("empty SQL")
    try:
        statements = [s for s in sqlglot.parse(text, read="sqlite") if s is not None]
    except (ParseError, TokenError) as exc:
        raise GuardError(f"SQL could not be parsed: {str(exc).splitlines()[0][:300]}") from None
    if len(statements) != 1:
        raise GuardError(f"exactly one statement is allowed, got {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, ALLOWED_ROOTS):
        raise GuardError(f"only SELECT queries are allowed, got {tree.key.upper()}")
    for node in tree.walk():
        if isinstance(node, (exp.Insert, exp.Update, exp.Delete, exp.Drop, exp.Create, exp.Alter, exp.Pragma, exp.Attach,
                             exp.Detach, exp.Command)):
            raise GuardError(f"{node.key.upper()} is not allowed in a query")
        if isinstance(node, exp.Anonymous) and str(node.name).lower() in DENIED_FUNCTIONS:
            raise GuardError(f"function {node.name} is not allowed")
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    known = {t.lower(): t for t in known_tables}
    known.update({"sqlite_master": "sqlite_master", "sqlite_schema": "sqlite_schema"})
    used = set()
    for t in tree.find_all(exp.Table):
        name = t.name
        if not name:
            continue  # table-valued expressions
        if t.args.get("db"):
            raise GuardError(f"schema-qualified table {t.args['db']}.{name} is not allowed")
        low = name.lower()
        if low in cte_names:
            continue
        if low not in known:
            raise GuardError(f"no such table: {name}")
        used.add(known[low])
    limit_added = False
    out = text
    if tree.args.get("limit") is None and not aggregate_only(tree):
        # Appended to the model's own text (kept as written, so the user sees their query); the
        # newline ends a trailing `--` comment. A LIMIT after a compound SELECT applies to all of it.
        out = f"{text}\nLIMIT {int(default_limit)}"
        limit_added = True
    return CheckedSQL(sql=out, tables=used, limit_added=limit_added, base_sql=text)


# ---------------------------------------------------------------------------------------------
# Execution

_READ_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION}
_RECURSIVE = getattr(sqlite3, "SQLITE_RECURSIVE", 33)


def _authorizer(action, arg1, arg2, _db, _trigger):
    if action == sqlite3.SQLITE_FUNCTION:
        # arg2 is the function name
        if (arg2 or "").lower() in DENIED_FUNCTIONS:
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK
    if action in _READ_ACTIONS or action == _RECURSIVE:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[list]
    truncated: bool
    total_rows: int | None = None  # when truncated: the count of the whole result, if known in time


def guarded_connection(path: str, max_length: int) -> sqlite3.Connection:
    conn = open_readonly(path)
    conn.set_authorizer(_authorizer)
    if hasattr(conn, "setlimit"):
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max_length)
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    return conn


def _jsonable(v):
    if isinstance(v, bytes):
        return f"<{len(v)} bytes>"
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return None
    return v


def execute_guarded(path: str, sql: str, *, timeout: float = 5.0, max_rows: int = 500, max_length: int = 1_000_000,
                    count_sql: str | None = None) -> QueryResult:
    """Run a checked SELECT with read-only authorizer, time limit and row cap.

    When the rows are capped and `count_sql` is given (the statement without an added LIMIT), a
    COUNT(*) over it gives the real size of the result, within what is left of the same time limit;
    it stays None when that runs out."""
    conn = guarded_connection(path, max_length)
    deadline = time.monotonic() + timeout

    def progress():
        return 1 if time.monotonic() > deadline else 0

    conn.set_progress_handler(progress, 2000)
    try:
        try:
            cur = conn.execute(sql)
            columns = [d[0] for d in cur.description or []]
            rows = cur.fetchmany(max_rows + 1)
        except sqlite3.OperationalError as exc:
            msg = str(exc)
            if "interrupted" in msg:
                raise TimeLimitError(
                    f"this question needs more time than allowed ({timeout:g} s); try a shorter period or fewer groups"
                ) from None
            raise ExecutionError(msg) from None
        except (sqlite3.Error, sqlite3.Warning) as exc:
            raise ExecutionError(f"{type(exc).__name__}: {exc}") from None
        truncated = len(rows) > max_rows
        total = None
        if truncated and count_sql:
            try:
                cur.close()
                total = conn.execute(f"SELECT COUNT(*) FROM (\n{count_sql}\n)").fetchone()[0]
            except (sqlite3.Error, sqlite3.Warning):
                total = None  # out of time or not countable: the result just says it was capped
    finally:
        conn.close()
    rows = rows[:max_rows]
    return QueryResult(columns=columns, rows=[[_jsonable(v) for v in r] for r in rows], truncated=truncated,
                       total_rows=total)
