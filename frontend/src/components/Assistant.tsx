"use client";
import { useCallback, useEffect, useRef, useState } from "react";
import { api, describeError } from "@/lib/api";
import { historyFor, restoreTurns, serializeTurns, STORAGE_KEY, type Turn } from "@/lib/conversation";
import { AnswerView } from "./AnswerView";

function Thinking({ since, onCancel }: { since: number; onCancel: () => void }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  const secs = Math.max(0, Math.floor((now - since) / 1000));
  return (
    <div className="turn-a thinking" data-testid="thinking">
      <span className="spinner" />
      <span>
        Thinking… <span data-testid="elapsed">{secs}s</span>
      </span>
      <div className="spacer" />
      <button className="btn" onClick={onCancel}>
        Cancel
      </button>
    </div>
  );
}

export function Assistant() {
  const [turns, setTurns] = useState<Turn[]>([]);
  const [restored, setRestored] = useState(false);
  const [examples, setExamples] = useState<string[]>([]);
  const [input, setInput] = useState("");
  const [pendingSince, setPendingSince] = useState<number | null>(null);
  const abortRef = useRef<AbortController | null>(null);
  const endRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    setTurns(restoreTurns(sessionStorage.getItem(STORAGE_KEY)));
    setRestored(true);
    api.chatExamples().then(
      (r) => setExamples(r.questions ?? []),
      () => setExamples([]),
    );
    return () => abortRef.current?.abort();
  }, []);

  useEffect(() => {
    if (!restored) return;
    try {
      sessionStorage.setItem(STORAGE_KEY, serializeTurns(turns));
    } catch {
      // storage full or disabled: the conversation still lives in memory
    }
    endRef.current?.scrollIntoView({ block: "nearest" });
  }, [turns, restored]);

  const update = (id: string, patch: Partial<Turn>) => setTurns((ts) => ts.map((t) => (t.id === id ? { ...t, ...patch } : t)));

  const ask = useCallback(
    async (question: string) => {
      const q = question.trim();
      if (!q || abortRef.current) return;
      const id = `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
      const history = historyFor(turns);
      setTurns((ts) => [...ts, { id, question: q, status: "pending" }]);
      setInput("");
      const ctl = new AbortController();
      abortRef.current = ctl;
      setPendingSince(Date.now());
      try {
        const answer = await api.ask(q, history, ctl.signal);
        update(id, { status: "done", answer });
      } catch (e) {
        if (ctl.signal.aborted) update(id, { status: "cancelled" });
        else update(id, { status: "failed", error: describeError(e, "chat") });
      } finally {
        abortRef.current = null;
        setPendingSince(null);
      }
    },
    [turns],
  );

  const busy = pendingSince !== null;

  return (
    <div className="stack">
      <div className="page-head">
        <div>
          <h1>Assistant</h1>
          <p className="sub">Ask a question about your data; the answer comes with a chart, the rows and the SQL behind it.</p>
        </div>
        {turns.length > 0 && (
          <button className="btn" disabled={busy} onClick={() => setTurns([])}>
            Clear conversation
          </button>
        )}
      </div>

      {turns.length === 0 && (
        <section className="panel">
          <h2 style={{ marginBottom: 10 }}>Try one of these</h2>
          {examples.length > 0 ? (
            <div className="examples" data-testid="examples">
              {examples.map((q) => (
                <button key={q} className="chip" disabled={busy} onClick={() => ask(q)}>
                  {q}
                </button>
              ))}
            </div>
          ) : (
            <p className="muted">Example questions appear here once data is loaded.</p>
          )}
        </section>
      )}

      <div className="chat" data-testid="conversation">
        {turns.map((t) => (
          <div key={t.id} className="chat">
            <div className="turn-q">{t.question}</div>
            {t.status === "pending" && pendingSince !== null && (
              <Thinking since={pendingSince} onCancel={() => abortRef.current?.abort()} />
            )}
            {t.status === "done" && t.answer && <AnswerView answer={t.answer} />}
            {t.status === "cancelled" && (
              <div className="turn-a muted" data-testid="cancelled">
                Cancelled.
              </div>
            )}
            {t.status === "failed" && t.error && (
              <div className="notice error" role="alert" data-testid="answer-failed">
                <strong>{t.error.title}</strong>
                <span>{t.error.detail}</span>
              </div>
            )}
          </div>
        ))}
      </div>

      {turns.length > 0 && examples.length > 0 && (
        <details>
          <summary className="muted" style={{ cursor: "pointer", fontSize: "0.85rem" }}>
            Example questions
          </summary>
          <div className="examples" style={{ marginTop: 8 }}>
            {examples.map((q) => (
              <button key={q} className="chip" disabled={busy} onClick={() => ask(q)}>
                {q}
              </button>
            ))}
          </div>
        </details>
      )}

      <form
        className="composer"
        onSubmit={(e) => {
          e.preventDefault();
          ask(input);
        }}
      >
        <input
          data-testid="question"
          placeholder="e.g. Revenue by month in 2024"
          value={input}
          maxLength={1000}
          onChange={(e) => setInput(e.target.value)}
        />
        <button className="btn primary" type="submit" disabled={busy || !input.trim()}>
          Ask
        </button>
      </form>
      <div ref={endRef} />
    </div>
  );
}
