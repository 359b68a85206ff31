import { describe, expect, it } from "vitest";
import { historyFor, restoreTurns, serializeTurns, type Turn } from "@/lib/conversation";

const answer = (sql: string, rows = 1) => ({
  sql,
  columns: ["n"],
  rows: Array.from({ length: rows }, (_, i) => [i]),
  row_count: rows,
  truncated: false,
  chart: { type: "table" as const },
  title: "t",
  error: null,
});

describe("conversation storage", () => {
  it("round-trips and marks interrupted questions as failed", () => {
    const turns: Turn[] = [
      { id: "1", question: "a", status: "done", answer: answer("SELECT 1") },
      { id: "2", question: "b", status: "pending" },
    ];
    const back = restoreTurns(serializeTurns(turns));
    expect(back[0]).toEqual(turns[0]);
    expect(back[1].status).toBe("failed");
    expect(back[1].error?.title).toBe("Interrupted");
  });

  it("keeps stored rows small and flags them as capped", () => {
    const back = restoreTurns(serializeTurns([{ id: "1", question: "a", status: "done", answer: answer("S", 500) }]));
    expect(back[0].answer?.rows.length).toBe(200);
    expect(back[0].answer?.truncated).toBe(true);
  });

  it("ignores broken storage", () => {
    expect(restoreTurns("{not json")).toEqual([]);
    expect(restoreTurns(null)).toEqual([]);
  });
});

describe("historyFor", () => {
  it("sends finished exchanges only, the SQL as the assistant's words", () => {
    const turns: Turn[] = [
      { id: "1", question: "a", status: "done", answer: answer("SELECT 1") },
      { id: "2", question: "b", status: "failed", error: { title: "x", detail: "y" } },
      { id: "3", question: "c", status: "cancelled" },
    ];
    expect(historyFor(turns)).toEqual([
      { role: "user", content: "a" },
      { role: "assistant", content: "SELECT 1" },
    ]);
  });
});
