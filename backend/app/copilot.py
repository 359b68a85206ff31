"""The copilot: question -> prompt -> model -> guarded SQL -> rows + chart."""
from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
from dataclasses import dataclass, field

import anyio

from .core.config import Settings
from .core.database import list_tables, quote_ident
from .dataset import Dataset
from .llm import LLMBadOutput, LLMError, LLMTimeout, OllamaClient
from .sql_guard import ExecutionError, GuardError, TimeLimitError, check_sql, execute_guarded

log = logging.getLogger("munero.copilot")

CHART_TYPES = ("bar", "line", "pie", "scatter", "table", "kpi")
MAX_HISTORY = 6
MAX_PIE_ROWS = 16  # more than 8 slices are drawn as 7 and "Other" by the frontend
SAMPLE_VALUE_CHARS = 60

SYSTEM_PROMPT = (
    "You are an expert data analyst who writes SQLite queries. "
    "Given the database schema and the question, write ONE SQLite SELECT query that answers it, "
    "using only the tables and columns in the schema, and choose how to chart the result. "
    "Answer with JSON only: {\"sql\": \"...\", \"chart_type\": \"bar|line|pie|scatter|table|kpi\", "
    "\"x\": \"<result column for the x axis or categories>\", \"y\": \"<result column with the values>\", "
    "\"title\": \"<short title>\"}. Give result columns short aliases. Dialect: SQLite."
)


def schema_prompt(conn: sqlite3.Connection, max_chars: int = 24000) -> str:
    """CREATE TABLE statements each followed by 3 example rows (the format Qwen2.5-Coder was evaluated with)."""
    parts = []
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type IN ('table','view') AND name NOT LIKE 'sqlite_%' AND sql IS NOT NULL ORDER BY type, name"
    ).fetchall()
    for name, sql in rows:
        block = sql.strip() + ";"
        try:
            cur = conn.execute(f"SELECT * FROM {quote_ident(name)} LIMIT 3")
            cols = [d[0] for d in cur.description]
            sample = cur.fetchall()
        except sqlite3.DatabaseError:
            sample, cols = [], []
        if sample:
            lines = ["\t".join(cols)]
            for r in sample:
                lines.append("\t".join(_cell(v) for v in r))
            block += f"\n/*\n3 example rows:\nSELECT * FROM {quote_ident(name)} LIMIT 3;\n" + "\n".join(lines) + "\n*/"
        parts.append(block)
    text = "\n\n".join(parts)
    if len(text) > max_chars:
        # Too big for the context: keep the DDL, drop the examples.
        text = "\n\n".join(sql.strip() + ";" for _n, sql in rows)[:max_chars]
    return text


def _cell(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bytes):
        return f"<{len(v)} bytes>"
    s = str(v).replace("\n", " ").replace("\t", " ")
    return s if len(s) <= SAMPLE_VALUE_CHARS else s[:SAMPLE_VALUE_CHARS] + "..."


def build_messages(schema: str, question: str, history: list[dict] | None) -> list[dict]:
    msgs = [{"role": "system", "content": SYSTEM_PROMPT}]
    for turn in (history or [])[-MAX_HISTORY:]:
        role = turn.get("role")
        content = str(turn.get("content") or "")
        if role in ("user", "assistant") and content:
            msgs.append({"role": role, "content": content[:4000]})
    msgs.append({
        "role": "user",
        "content": f"{schema}\n\n-- Using valid SQLite, answer the following question for the tables provided above.\n-- Question: {question}\n",
    })
    return msgs


def correction_message(error: str) -> dict:
    return {
        "role": "user",
        "content": f"The query failed with this SQLite error: {error}\nFix the query and answer with the same JSON format.",
    }


def parse_answer(content: str) -> dict:
    text = content.strip()
    text = re.sub(r"^```(?:json)?\s*|\s*```$", "", text)
    try:
        data = json.loads(text)
    except ValueError:
        m = re.search(r"\{.*\}", text, re.S)
        if not m:
            raise LLMBadOutput("the model's answer is not the expected JSON") from None
        try:
            data = json.loads(m.group(0))
        except ValueError:
            raise LLMBadOutput("the model's answer is not the expected JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("sql"), str) or not data["sql"].strip():
        raise LLMBadOutput("the model's answer has no SQL")
    return data


# ---------------------------------------------------------------------------------------------
# Chart choice

_TIME_NAME = re.compile(r"(date|day|week|month|year|quarter|period|time)", re.I)
_TIME_VALUE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?|-W\d{2}|-Q[1-4])?([ T].*)?$")


def _kind(name: str, values: list) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "empty"
    if all(isinstance(v, str) and _TIME_VALUE.match(v) for v in vals):
        return "time"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        if _TIME_NAME.search(name) and all(isinstance(v, int) and 1900 <= v <= 2200 for v in vals):
            return "time"
        return "number"
    return "text"


def choose_chart(columns: list[str], rows: list[list], model_type=None, x=None, y=None) -> dict:
    kinds = {c: _kind(c, [r[i] for r in rows]) for i, c in enumerate(columns)}
    nums = [c for c in columns if kinds[c] == "number"]
    times = [c for c in columns if kinds[c] == "time"]
    texts = [c for c in columns if kinds[c] == "text"]

    def valid(t, x, y) -> bool:
        if t not in CHART_TYPES:
            return False
        if t == "table":
            return True
        if not rows:
            return False
        if t == "kpi":
            return len(rows) == 1 and y in nums
        if x not in columns or y not in nums or x == y:
            return False
        if t == "line":
            return kinds[x] in ("time", "number")
        if t == "bar":
            return kinds[x] in ("text", "time", "number")
        if t == "pie":
            return kinds[x] in ("text",) and len(rows) <= MAX_PIE_ROWS and all((r[columns.index(y)] or 0) >= 0 for r in rows)
        if t == "scatter":
            return kinds[x] == "number"
        return False

    if isinstance(model_type, str):
        t = model_type.lower().strip()
        yy = y if y in columns else (nums[0] if t == "kpi" and nums else y)
        if valid(t, x, yy):
            return {"type": t, "x": x if t != "kpi" else None, "y": yy if t != "table" else None, "series": None}
    # Rules
    if not rows:
        return {"type": "table", "x": None, "y": None, "series": None}
    if len(rows) == 1 and nums and len(columns) <= 2:
        return {"type": "kpi", "x": None, "y": nums[0], "series": None}
    if times and nums:
        series = texts[0] if texts else None
        return {"type": "line", "x": times[0], "y": next(c for c in nums if c != times[0]), "series": series}
    if texts and nums:
        return {"type": "bar", "x": texts[0], "y": nums[0], "series": None}
    if len(nums) >= 2:
        return {"type": "scatter", "x": nums[0], "y": nums[1], "series": None}
    return {"type": "table", "x": None, "y": None, "series": None}


# ---------------------------------------------------------------------------------------------

@dataclass
class ChatResult:
    sql: str | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[list] = field(default_factory=list)
    truncated: bool = False
    chart: dict = field(default_factory=lambda: {"type": "table", "x": None, "y": None, "series": None})
    title: str | None = None
    error: str | None = None
    error_detail: str | None = None  # the database's own words, shown with the SQL under the fold
    total_rows: int | None = None

    def public(self) -> dict:
        return {
            "sql": self.sql,
            "columns": self.columns,
            "rows": self.rows,
            "row_count": len(self.rows),
            "total_rows": self.total_rows if self.truncated else len(self.rows),
            "error_detail": self.error_detail,
            "truncated": self.truncated,
            "chart": self.chart,
            "title": self.title,
            "error": self.error,
        }


class Copilot:
    def __init__(self, settings: Settings, ds: Dataset, llm: OllamaClient):
        self.s = settings
        self.ds = ds
        self.llm = llm

    def _schema(self) -> str:
        cache = self.ds.__dict__.setdefault("_schema_prompt", None)
        if cache is None:
            # About 3 characters per token; leave room for instructions, history and the answer.
            budget = max(4000, (self.s.llm_num_ctx - 2000) * 3)
            with self.ds.connection() as conn:
                cache = schema_prompt(conn, max_chars=budget)
            self.ds.__dict__["_schema_prompt"] = cache
        return cache

    async def answer(self, question: str, history: list[dict] | None) -> ChatResult:
        schema = await anyio.to_thread.run_sync(self._schema)
        messages = build_messages(schema, question, history)
        debug = self.s.debug_log_prompts
        if debug:
            log.info("prompt question=%r", question)
        last_sql = None
        last_error = None
        attempts = 1 + self.s.llm_max_corrections
        for attempt in range(attempts):
            t0 = time.monotonic()
            try:
                ans = await self.llm.chat(messages)
            except LLMTimeout as exc:
                return ChatResult(sql=last_sql, error=exc.message)
            except LLMBadOutput as exc:
                return ChatResult(sql=last_sql, error=exc.message)
            log.info("model call attempt=%d took %.0f ms done_reason=%s", attempt + 1, (time.monotonic() - t0) * 1000, ans.done_reason)
            if debug:
                log.info("model output=%r", ans.content)
            if ans.done_reason == "length":
                return ChatResult(sql=last_sql, error="the model's answer was cut off (too long for its context window); try a simpler question")
            try:
                data = parse_answer(ans.content)
            except LLMBadOutput as exc:
                last_error = exc.message
                messages += [{"role": "assistant", "content": ans.content[:4000]},
                             {"role": "user", "content": "Answer with the JSON object only: {\"sql\", \"chart_type\", \"x\", \"y\", \"title\"}."}]
                continue
            sql = data["sql"].strip()
            last_sql = sql
            try:
                checked = check_sql(sql, self.ds.tables, self.s.sql_default_limit)
                result = await anyio.to_thread.run_sync(
                    lambda: execute_guarded(self.ds.path, checked.sql, timeout=self.s.sql_timeout,
                                            max_rows=self.s.sql_max_rows, max_length=self.s.sql_max_length,
                                            count_sql=checked.base_sql)
                )
            except TimeLimitError as exc:
                log.info("query stopped by the time limit attempt=%d", attempt + 1)
                return ChatResult(sql=checked.sql, error=str(exc))
            except (GuardError, ExecutionError) as exc:
                last_error = str(exc)
                log.info("query refused or failed attempt=%d error_class=%s", attempt + 1, type(exc).__name__)
                if debug:
                    log.info("failed sql=%r error=%r", sql, last_error)
                messages += [{"role": "assistant", "content": ans.content[:4000]}, correction_message(last_error)]
                continue
            chart = choose_chart(result.columns, result.rows, data.get("chart_type"), data.get("x"), data.get("y"))
            title = data.get("title") if isinstance(data.get("title"), str) and data.get("title").strip() else None
            return ChatResult(sql=checked.sql, columns=result.columns, rows=result.rows, truncated=result.truncated,
                              chart=chart, title=title or _title(question), total_rows=result.total_rows)
        return ChatResult(
            sql=last_sql,
            error=plain_error(last_error or "", self.ds, self.s.sql_timeout),
            error_detail=f"No working query after {attempts} attempts; the last error was: {last_error}",
        )


def _schema_columns(ds: Dataset) -> dict[str, list[str]]:
    cache = ds.__dict__.get("_columns")
    if cache is None:
        from .core.database import table_columns

        with ds.connection() as conn:
            cache = {t: [c.name for c in table_columns(conn, t)] for t in ds.tables}
        ds.__dict__["_columns"] = cache
    return cache


def _suggestions(ds: Dataset, wanted: str, limit: int = 4) -> list[str]:
    """Columns to try instead: near spellings of the missing one first, else what the profile measures."""
    import difflib

    from .profile import _label

    cols = list(dict.fromkeys(c for cs in _schema_columns(ds).values() for c in cs))
    by_low = {}
    for c in cols:
        by_low.setdefault(_label(c).lower(), c)
        by_low.setdefault(c.lower(), c)
    near = difflib.get_close_matches(wanted.lower(), list(by_low), n=limit, cutoff=0.75)
    out = [_label(by_low[n]).lower() for n in near]
    p = ds.profile
    for m in p.measures:
        if m.agg in ("sum", "avg") and m.column and not m.factors:
            out.append(_label(m.column).lower())
        elif m.factors:
            out.append(m.label.lower())
    for d in p.dimensions[:2]:
        out.append(d.label.lower())
    return list(dict.fromkeys(out))[:limit]


def plain_error(raw: str, ds: Dataset, timeout: float) -> str:
    """What the person reads when no query worked: what is wrong in their words, and what to try."""
    m = re.search(r"no such column: ([\w.\"`\[\] ]+)", raw)
    if m:
        col = m.group(1).strip().strip('"`[]').split(".")[-1]
        tries = _suggestions(ds, col)
        return f"There is no '{col}' column." + (f" Try: {', '.join(tries)}." if tries else "")
    m = re.search(r"no such table: ([\w.\"`\[\] ]+)", raw)
    if m:
        from .profile import table_label

        names = ", ".join(table_label(t).lower() for t in ds.tables[:6])
        return f"There is no '{m.group(1).strip()}' table. The data has: {names}."
    if "ran longer than" in raw or "interrupted" in raw:
        return (f"That question took longer than {timeout:g} s to answer. "
                "Try a shorter period or fewer groups, for example the top 10 only.")
    if "not allowed" in raw or "only SELECT" in raw:
        return "That question would change the data, and the assistant only reads it. Try asking about the figures instead."
    if "not the expected JSON" in raw or "has no SQL" in raw:
        return "The model's answer was not in the expected form (not the expected JSON). Try asking again or in other words."
    if "ambiguous column" in raw:
        return "The question matches columns in more than one table. Try naming the table, for example \"revenue by customer country\"."
    return "The assistant could not write a working query for that question. Try asking it in other words, or pick an example below."


def _title(question: str) -> str:
    q = question.strip().rstrip("?")
    return q[:1].upper() + q[1:80]


def example_questions(ds: Dataset) -> list[str]:
    """Questions in plain English from the profile: "Which 10 countries had the highest total face value?"."""
    from .profile import plural

    p = ds.profile
    out = []
    if p.usable:
        sums = [m for m in p.measures if m.agg in ("sum", "sql") and m.format != "percent"]
        money = next((m for m in sums if m.format == "currency"), sums[0] if sums else None)
        if money is None:
            what = p.rows_label.lower()
            highest = f"the most {what}"
        else:
            lab = money.label.lower()
            what = lab if lab in ("revenue", "sales", "turnover", "income") or lab.startswith("total") else f"total {lab}"
            highest = f"the highest {what}"
        dims = p.dimensions
        if dims:
            out.append(f"Which 10 {plural(dims[0].label.lower())} had {highest}?")
        out.append(f"How did {what} change month by month?")
        rows = p.rows_label.lower()
        counted = rows if plural(rows) == rows else f"{rows} entries"
        out.append(f"How many {counted} were there per month in the last year?")
        if money is not None and len(dims) >= 2:
            out.append(f"What share of {what} came from each {dims[1].label.lower()}?")
        ratio = next((m for m in p.measures if m.format == "percent"), None)
        if ratio is not None and dims:
            out.append(f"What was the average {ratio.label.lower()} by {dims[0].label.lower()}?")
    else:
        for t in ds.tables[:3]:
            out.append(f"How many rows are in {t}?")
    if not out:
        out.append("Which tables are in the database?")
    return out
