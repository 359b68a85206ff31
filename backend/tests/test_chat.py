"""The copilot against the Ollama API stub (a real HTTP server in a subprocess)."""
import json
import logging

import pytest

from app.copilot import choose_chart
from app.llm import ANSWER_SCHEMA
from conftest import start_stub


def chat(c, question, **kw):
    return c.post("/api/chat/", json={"question": question, **kw})


def chat_calls(stub, marker):
    return [r["body"] for r in stub.requests() if r["path"] == "/api/chat" and marker in json.dumps(r["body"])]


@pytest.mark.parametrize("stream", [True, False])
def test_chat_answers_with_rows_and_chart_streaming_and_not(make_client, sample_db, stub, stream):
    c = make_client(db_path=sample_db, ollama_base_url=stub.url, llm_stream=stream)
    r = chat(c, f"Top channels by revenue stream={stream}")
    assert r.status_code == 200
    b = r.json()
    assert b["error"] is None
    assert b["columns"] == ["currency_code", "total_quantity"]
    assert b["row_count"] == len(b["rows"]) > 0 and b["truncated"] is False
    assert b["chart"]["type"] == "bar" and b["chart"]["x"] == "currency_code" and b["chart"]["y"] == "total_quantity"
    assert b["sql"].startswith("SELECT") and b["title"]
    call = chat_calls(stub, f"stream={stream}")[-1]
    assert call["stream"] is stream


def test_model_call_uses_schema_format_temperature_zero_and_fixed_context(make_client, sample_db, stub):
    c = make_client(db_path=sample_db, ollama_base_url=stub.url, llm_num_ctx=6144)
    r = chat(c, "Monthly revenue trend __bad_sql__ ctx-check")
    assert r.status_code == 200 and r.json()["error"] is None
    calls = chat_calls(stub, "ctx-check")
    assert len(calls) == 2  # the first answer failed and was corrected
    for call in calls:
        assert call["format"] == ANSWER_SCHEMA
        assert call["options"]["temperature"] == 0
        assert call["options"]["num_ctx"] == 6144
        assert call["model"] == "qwen2.5-coder:3b"
    prompt = call["messages"][1]["content"]
    assert "CREATE TABLE orders" in prompt and "3 example rows" in prompt and "SQLite" in call["messages"][0]["content"]


def test_sql_error_is_fed_back_and_the_corrected_query_answers(make_client, sample_db, stub):
    c = make_client(db_path=sample_db, ollama_base_url=stub.url)
    b = chat(c, "Monthly revenue trend __bad_sql__ feedback-check").json()
    assert b["error"] is None and b["chart"]["type"] == "line" and b["columns"][0] == "month"
    second = chat_calls(stub, "feedback-check")[1]["messages"]
    assert "no such column: stub_nonexistent_column" in second[-1]["content"]
    assert second[-2]["role"] == "assistant" and "stub_nonexistent_column" in second[-2]["content"]


def test_user_gets_a_plain_message_and_the_failing_sql_when_corrections_run_out(make_client, sample_db, stub):
    c = make_client(db_path=sample_db, ollama_base_url=stub.url, llm_max_corrections=0)
    b = chat(c, "Top products __bad_sql__").json()
    # in plain words, with columns that exist; the database's message stays with the SQL
    assert b["error"].startswith("There is no 'stub_nonexistent_column' column. Try: amount")
    assert "no such column" in b["error_detail"] and "stub_nonexistent_column" in b["sql"]
    assert b["rows"] == [] and b["columns"] == []


def test_write_attempt_from_the_model_is_refused_and_corrected(make_client, sample_db, stub):
    c = make_client(db_path=sample_db, ollama_base_url=stub.url)
    b = chat(c, "__sql__DELETE FROM orders__end__ delete-check").json()
    assert b["error"] is None and b["rows"]
    second = chat_calls(stub, "delete-check")[1]["messages"][-1]["content"]
    assert "only SELECT queries are allowed" in second


def test_a_query_over_the_time_limit_ends_at_once_with_a_kind_message(make_client, sample_db, stub):
    c = make_client(db_path=sample_db, ollama_base_url=stub.url, sql_timeout=0.3)
    slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    b = chat(c, f"__sql__{slow}__end__ slow-check").json()
    assert b["error"] == "this question needs more time than allowed (0.3 s); try a shorter period or fewer groups"
    assert "RECURSIVE" in b["sql"]
    assert len(chat_calls(stub, "slow-check")) == 1  # a retry would only wait as long again


def test_history_is_sent_as_prior_turns(make_client, sample_db, stub):
    c = make_client(db_path=sample_db, ollama_base_url=stub.url)
    hist = [{"role": "user", "content": "earlier question hist-check"}, {"role": "assistant", "content": "SELECT 1"}]
    assert chat(c, "and now by channel", history=hist).status_code == 200
    msgs = chat_calls(stub, "hist-check")[-1]["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[1]["content"] == "earlier question hist-check"


def test_missing_model_is_503_naming_the_model_and_how_to_pull_it(make_client, sample_db):
    s = start_stub(STUB_MODELS="llama3.2:1b")
    try:
        c = make_client(db_path=sample_db, ollama_base_url=s.url)
        r = chat(c, "anything")
        assert r.status_code == 503
        assert "qwen2.5-coder:3b" in r.json()["detail"] and "ollama pull qwen2.5-coder:3b" in r.json()["detail"]
        t = c.get("/api/chat/test")
        assert t.status_code == 200
        assert t.json()["reachable"] is True and t.json()["model_present"] is False and t.json()["ok"] is False
        assert "ollama pull" in t.json()["error"]
        h = c.get("/health")
        assert h.status_code == 503 and h.json()["llm"] == {"ok": False, "model": "qwen2.5-coder:3b", "model_present": False}
    finally:
        s.proc.kill()
        s.proc.wait()


def test_unreachable_model_server_is_503_and_reported_by_chat_test(make_client, sample_db):
    c = make_client(db_path=sample_db, ollama_base_url="http://127.0.0.1:9")
    r = chat(c, "anything")
    assert r.status_code == 503 and "not reachable" in r.json()["detail"]
    t = c.get("/api/chat/test").json()
    assert t["reachable"] is False and t["ok"] is False and "not reachable" in t["error"]


def test_error_line_after_a_200_is_an_error(make_client, sample_db, stub):
    c = make_client(db_path=sample_db, ollama_base_url=stub.url, llm_stream=True)
    b = chat(c, "Top products __midstream_error__").json()
    assert "unexpected EOF" in b["error"] and b["rows"] == []


def test_done_reason_length_is_treated_as_truncated(make_client, sample_db, stub):
    c = make_client(db_path=sample_db, ollama_base_url=stub.url)
    b = chat(c, "Top products __length__").json()
    assert "cut off" in b["error"]


def test_answer_that_is_not_json_ends_in_a_plain_error(make_client, sample_db, stub):
    c = make_client(db_path=sample_db, ollama_base_url=stub.url)
    b = chat(c, "Top products __not_json__").json()
    assert "not the expected JSON" in b["error"]


def test_a_hanging_model_times_out_with_a_message(make_client, sample_db, hang_stub):
    c = make_client(db_path=sample_db, ollama_base_url=hang_stub.url, llm_timeout=1.0)
    b = chat(c, "Top products __hang__").json()
    assert "did not answer within 1 s" in b["error"]


def test_health_answers_degraded_when_ollama_hangs(make_client, sample_db, hang_stub):
    c = make_client(db_path=sample_db, ollama_base_url=hang_stub.url, health_probe_timeout=0.5)
    h = c.get("/health")
    assert h.status_code == 503
    assert h.json() == {"status": "degraded", "db": {"ok": True, "tables": 9},
                        "llm": {"ok": False, "model": "qwen2.5-coder:3b", "model_present": False}}


def test_empty_question_is_422_with_a_plain_message(make_client, sample_db, stub):
    c = make_client(db_path=sample_db, ollama_base_url=stub.url)
    r = chat(c, "   ")
    assert r.status_code == 422 and r.json() == {"detail": "question must not be empty"}
    r = c.post("/api/chat/", json={"history": "nope"})
    assert r.status_code == 422 and isinstance(r.json()["detail"], str)


def test_chat_without_trailing_slash_is_served_too(make_client, sample_db, stub):
    c = make_client(db_path=sample_db, ollama_base_url=stub.url)
    r = c.post("/api/chat", json={"question": "top channels"}, follow_redirects=False)
    assert r.status_code == 200 and r.json()["error"] is None


def test_chat_test_reports_version_and_model(make_client, sample_db, stub):
    c = make_client(db_path=sample_db, ollama_base_url=stub.url)
    assert c.get("/api/chat/test").json() == {"ok": True, "reachable": True, "model": "qwen2.5-coder:3b",
                                               "model_present": True, "version": "0.12.3", "error": None}


def test_examples_are_built_from_the_dataset(make_client, sample_db, other_db, stub):
    q = make_client(db_path=sample_db, ollama_base_url=stub.url).get("/api/chat/examples").json()["questions"]
    assert any("amount" in x for x in q) and any("orders" in x for x in q)
    q2 = make_client(db_path=other_db, ollama_base_url=stub.url).get("/api/chat/examples").json()["questions"]
    assert "How many event log entries were there per month in the last year?" in q2
    assert "Which 10 kinds had the highest total duration ms?" in q2


def test_chat_on_a_differently_shaped_dataset(make_client, other_db, stub):
    c = make_client(db_path=other_db, ollama_base_url=stub.url)
    b = chat(c, "what kinds of events").json()
    assert b["error"] is None and b["columns"] == ["kind", "total_duration_ms"] and len(b["rows"]) == 5


def test_history_of_questions_is_kept_in_the_state_dir(make_client, sample_db, stub, tmp_path):
    c = make_client(db_path=sample_db, ollama_base_url=stub.url, app_state_dir=str(tmp_path / "st"))
    chat(c, "top channels history-item")
    assert (tmp_path / "st" / "chat_history.sqlite").is_file()
    items = c.get("/api/chat/history").json()["items"]
    assert items[0]["question"] == "top channels history-item" and items[0]["sql"].startswith("SELECT")


# -- chart choice -------------------------------------------------------------------------------

def test_chart_rules_pick_line_for_time():
    assert choose_chart(["month", "v"], [["2024-01", 1], ["2024-02", 2]])["type"] == "line"


def test_chart_rules_pick_bar_for_category_and_number():
    ch = choose_chart(["country", "v"], [["DE", 1], ["FR", 2]])
    assert (ch["type"], ch["x"], ch["y"]) == ("bar", "country", "v")


def test_chart_rules_pick_scatter_for_two_numbers():
    assert choose_chart(["a", "b"], [[1, 2.0], [3, 4.5]])["type"] == "scatter"


def test_chart_rules_pick_kpi_for_one_value():
    assert choose_chart(["total"], [[42]]) == {"type": "kpi", "x": None, "y": "total", "series": None}


def test_chart_rules_fall_back_to_table():
    assert choose_chart(["a", "b"], [["x", "y"]])["type"] == "table"
    assert choose_chart(["a"], [])["type"] == "table"


def test_model_chart_is_kept_when_it_fits_and_replaced_when_it_does_not():
    rows = [["DE", 1], ["FR", 2]]
    assert choose_chart(["country", "v"], rows, "pie", "country", "v")["type"] == "pie"
    assert choose_chart(["country", "v"], rows, "scatter", "country", "v")["type"] == "bar"
    assert choose_chart(["country", "v"], rows, "donut", "country", "v")["type"] == "bar"
    assert choose_chart(["country", "v"], rows, "line", "nope", "v")["type"] == "bar"


def test_a_missing_column_is_explained_with_columns_that_exist(make_client, sample_db, stub):
    c = make_client(db_path=sample_db, ollama_base_url=stub.url, llm_max_corrections=0)
    b = chat(c, "Margin by country __sql__SELECT margin FROM orders__end__").json()
    assert b["error"] == "There is no 'margin' column. Try: amount, amount local, quantity, unit price."
    assert b["sql"] == "SELECT margin FROM orders" and "no such column: margin" in b["error_detail"]


def test_capped_answer_carries_the_true_total_and_aggregates_get_no_limit(make_client, sample_db, stub):
    c = make_client(db_path=sample_db, ollama_base_url=stub.url, sql_max_rows=50)
    b = chat(c, "all orders __sql__SELECT order_id FROM orders__end__").json()
    assert b["truncated"] and b["row_count"] == 50 and b["total_rows"] == 20000
    b = chat(c, "how much __sql__SELECT SUM(amount) AS total FROM orders__end__").json()
    assert b["sql"] == "SELECT SUM(amount) AS total FROM orders" and b["total_rows"] == 1 and not b["truncated"]
