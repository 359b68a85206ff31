"""Logging policy: no question, SQL or row values in logs unless DEBUG_LOG_PROMPTS=true."""
import logging

QUESTION = "Which secret-project-zebra customers spent most"


def _round(make_client, sample_db, stub, caplog, **kw):
    caplog.set_level(logging.DEBUG)
    c = make_client(db_path=sample_db, ollama_base_url=stub.url, **kw)
    body = c.post("/api/chat/", json={"question": QUESTION + " __bad_sql__"}).json()
    assert body["error"] is None and body["rows"]
    c.get("/api/dashboard/kpis", params={"filter": "country:Germany"})
    return body, caplog.text


def test_a_full_chat_round_logs_no_question_sql_or_rows(make_client, sample_db, stub, caplog, capfd):
    body, text = _round(make_client, sample_db, stub, caplog)
    out, err = capfd.readouterr()
    logs = text + out + err
    assert "POST /api/chat/ 200" in logs  # operational lines are there
    assert "secret-project-zebra" not in logs
    assert body["sql"] not in logs and "stub_nonexistent_column" not in logs and "SELECT" not in logs
    for row in body["rows"]:
        for v in row:
            if isinstance(v, str) or (isinstance(v, (int, float)) and abs(v) >= 10000):
                assert str(v) not in logs
    assert "Germany" not in logs  # filter values from query strings are not logged


def test_prompts_may_be_logged_when_debug_log_prompts_is_set(make_client, sample_db, stub, caplog):
    _body, text = _round(make_client, sample_db, stub, caplog, debug_log_prompts=True)
    assert "secret-project-zebra" in text and "stub_nonexistent_column" in text


def test_unhandled_errors_log_the_class_only(sample_db, caplog, tmp_path):
    from fastapi.testclient import TestClient

    from app.main import create_app
    from conftest import make_settings

    caplog.set_level(logging.INFO)
    app = create_app(make_settings(tmp_path, db_path=sample_db))

    @app.get("/boom")
    def boom():
        raise RuntimeError("value 12345.67 from the client data")

    with TestClient(app) as c:  # would raise if the error escaped to the server
        r = c.get("/boom")
    assert r.status_code == 500 and r.json() == {"detail": "internal error"}
    assert "RuntimeError" in caplog.text and "12345.67" not in caplog.text
