import type { ChatAnswer, ChatMessage, ErrorView } from "./api";

export interface Turn {
  id: string;
  question: string;
  status: "pending" | "done" | "failed" | "cancelled";
  answer?: ChatAnswer;
  error?: ErrorView;
}

export const STORAGE_KEY = "munero.conversation.v1";
const MAX_KEPT_ROWS = 200;

/** Conversation as stored for the session; pending turns from a reload cannot finish any more. */
export function restoreTurns(raw: string | null): Turn[] {
  if (!raw) return [];
  try {
    const turns = JSON.parse(raw) as Turn[];
    if (!Array.isArray(turns)) return [];
    return turns.map((t) =>
      t.status === "pending"
        ? { ...t, status: "failed", error: { title: "Interrupted", detail: "The page was reloaded before the answer arrived." } }
        : t,
    );
  } catch {
    return [];
  }
}

/** Serialises the conversation, keeping stored rows small enough for sessionStorage. */
export function serializeTurns(turns: Turn[]): string {
  return JSON.stringify(
    turns.map((t) =>
      t.answer && t.answer.rows.length > MAX_KEPT_ROWS
        ? { ...t, answer: { ...t.answer, rows: t.answer.rows.slice(0, MAX_KEPT_ROWS), truncated: true } }
        : t,
    ),
  );
}

/** The last few finished exchanges, as the backend's `history`. */
export function historyFor(turns: Turn[], maxTurns = 4): ChatMessage[] {
  const done = turns.filter((t) => t.status === "done" && t.answer && !t.answer.error).slice(-maxTurns);
  return done.flatMap((t) => [
    { role: "user" as const, content: t.question },
    { role: "assistant" as const, content: t.answer?.sql ?? t.answer?.title ?? "" },
  ]);
}
