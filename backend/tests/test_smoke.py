def test_app_answers_health_dashboard_and_chat_on_sample_db(make_client, sample_db, stub):
    c = make_client(db_path=sample_db, ollama_base_url=stub.url)
    h = c.get("/health")
    assert h.status_code == 200
    assert h.json()["status"] == "ok"
    t = c.get("/api/dashboard/test").json()
    assert t["main_table"] == "orders" and t["rows"] == 20000
    r = c.post("/api/chat/", json={"question": "top channels"})
    assert r.status_code == 200
    body = r.json()
    assert body["error"] is None and body["rows"], body
