import { describe, expect, it } from "vitest";
import { ApiError, buildQuery, createApiClient, describeError } from "@/lib/api";

type Call = { url: string; init?: RequestInit };

function stub(responses: Array<{ status: number; body: unknown } | Error>) {
  const calls: Call[] = [];
  const fetch = async (url: string, init?: RequestInit) => {
    calls.push({ url, init });
    const r = responses.shift();
    if (!r) throw new Error("unexpected call " + url);
    if (r instanceof Error) throw r;
    return new Response(typeof r.body === "string" ? r.body : JSON.stringify(r.body), {
      status: r.status,
      headers: { "Content-Type": "application/json" },
    });
  };
  return { calls, client: createApiClient({ fetch }) };
}

describe("buildQuery", () => {
  it("puts dates and one filter param per dimension, skipping empty values", () => {
    const q = buildQuery(
      { start: "2024-01-01", end: "2024-03-31", filters: { country: "Germany", channel: "", city: "São Paulo:North" } },
      { granularity: "week", measure: undefined },
    );
    const p = new URLSearchParams(q.slice(1));
    expect(q.startsWith("?")).toBe(true);
    expect(p.get("granularity")).toBe("week");
    expect(p.has("measure")).toBe(false);
    expect(p.get("start")).toBe("2024-01-01");
    expect(p.get("end")).toBe("2024-03-31");
    expect(p.getAll("filter")).toEqual(["country:Germany", "city:São Paulo:North"]);
  });

  it("is empty when nothing is set", () => {
    expect(buildQuery({})).toBe("");
  });
});

describe("api client", () => {
  it("requests KPIs with the query and returns the parsed body", async () => {
    const body = {
      period: { start: "2024-10-03", end: "2024-12-31" },
      previous_period: { start: "2024-07-05", end: "2024-10-02" },
      kpis: [{ name: "rows", label: "Orders", value: 10, previous: 8, change_pct: 25, format: "count" }],
    };
    const { calls, client } = stub([{ status: 200, body }]);
    const r = await client.kpis({ filters: { country: "Germany" } });
    expect(r).toEqual(body);
    expect(calls[0].url).toBe("/api/dashboard/kpis?filter=country%3AGermany");
  });

  it("builds timeseries and top URLs with their own params", async () => {
    const { calls, client } = stub([
      { status: 200, body: { granularity: "month", measure: "revenue", points: [] } },
      { status: 200, body: { dimension: "country", measure: "revenue", items: [] } },
    ]);
    await client.timeseries("month", "revenue", { start: "2024-01-01" });
    await client.top("country", "revenue", 5);
    expect(calls[0].url).toBe("/api/dashboard/timeseries?granularity=month&measure=revenue&start=2024-01-01");
    expect(calls[1].url).toBe("/api/dashboard/top?dimension=country&measure=revenue&n=5");
  });

  it("turns an error status into ApiError carrying the backend's detail", async () => {
    const { client } = stub([{ status: 503, body: { detail: "no data loaded yet: /data/munero.sqlite is missing" } }]);
    const err = await client.profile().catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(503);
    expect(err.message).toBe("no data loaded yet: /data/munero.sqlite is missing");
    expect(describeError(err)).toEqual({ title: "No data loaded yet", detail: err.message });
  });

  it("joins FastAPI validation messages", async () => {
    const { client } = stub([{ status: 422, body: { detail: [{ loc: ["body", "question"], msg: "question must not be empty" }] } }]);
    const err = await client.ask("  ").catch((e) => e);
    expect(err.status).toBe(422);
    expect(err.message).toBe("question must not be empty");
  });

  it("returns a degraded /health instead of throwing", async () => {
    const body = { status: "degraded", db: { ok: true, tables: 5 }, llm: { ok: false, model: "m", model_present: false } };
    const { client } = stub([{ status: 503, body }]);
    expect(await client.health()).toEqual(body);
  });

  it("posts the question and history as JSON to /api/chat/ with the abort signal", async () => {
    const answer = { sql: "SELECT 1", columns: ["x"], rows: [[1]], row_count: 1, truncated: false, chart: { type: "kpi" }, title: "t", error: null };
    const { calls, client } = stub([{ status: 200, body: answer }]);
    const ctl = new AbortController();
    const r = await client.ask("How many orders?", [{ role: "user", content: "hi" }], ctl.signal);
    expect(r).toEqual(answer);
    expect(calls[0].url).toBe("/api/chat/");
    expect(calls[0].init?.method).toBe("POST");
    expect(calls[0].init?.signal).toBe(ctl.signal);
    expect(JSON.parse(String(calls[0].init?.body))).toEqual({ question: "How many orders?", history: [{ role: "user", content: "hi" }] });
  });

  it("says the model is unavailable for a 503 from chat", async () => {
    const { client } = stub([{ status: 503, body: { detail: "model qwen2.5-coder:3b is not pulled" } }]);
    const err = await client.ask("q").catch((e) => e);
    expect(describeError(err, "chat")).toEqual({ title: "Model unavailable", detail: "model qwen2.5-coder:3b is not pulled" });
  });

  it("says no data is loaded when chat fails for want of a database", () => {
    const err = new ApiError(503, "no data loaded yet: no database file at /data/munero.sqlite");
    expect(describeError(err, "chat").title).toBe("No data loaded yet");
  });

  it("reports an unreachable server as status 0 and rethrows aborts untouched", async () => {
    const abort = new DOMException("aborted", "AbortError");
    const { client } = stub([new TypeError("fetch failed"), abort]);
    const e1 = await client.filters().catch((e) => e);
    expect(e1).toBeInstanceOf(ApiError);
    expect(e1.status).toBe(0);
    expect(describeError(e1).title).toBe("Backend unreachable");
    const e2 = await client.ask("q").catch((e) => e);
    expect(e2).toBe(abort);
  });

  it("uses the base URL when one is given", async () => {
    const calls: string[] = [];
    const client = createApiClient({
      baseUrl: "http://127.0.0.1:9",
      fetch: async (u) => (calls.push(u), new Response(JSON.stringify({ questions: ["a"] }), { status: 200 })),
    });
    expect(await client.chatExamples()).toEqual({ questions: ["a"] });
    expect(calls).toEqual(["http://127.0.0.1:9/api/chat/examples"]);
  });
});
