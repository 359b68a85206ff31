// End-to-end: the production build in Debian's Chromium against the real backend on a sample
// database and the Ollama API stub. Screenshots go to frontend/test-results/.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS, RESULTS, startStack } from "./harness.mjs";

let stack;
let context;
let page;
let profileDir;

/** "$12,345.60" / "20,000" / "-1.5" -> number, independent of the app's own formatting code. */
function parseShown(text) {
  const t = text.replace(/\u2212/g, "-").replace(/[^0-9.\-]/g, "");
  return Number(t);
}

function decimalsFor(format) {
  return format === "count" ? 0 : 2;
}

async function backendJson(path) {
  const r = await fetch(stack.backendUrl + path);
  assert.equal(r.status, 200, `${path} answered ${r.status}`);
  return r.json();
}

async function shot(name) {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(RESULTS, `${name}.png`), fullPage: true });
}

async function expectKpisMatch(kpis) {
  for (const k of kpis) {
    const card = page.getByTestId(`kpi-${k.name}`);
    await card.waitFor();
    assert.ok((await card.textContent()).includes(k.label), `card for ${k.name} shows its label ${k.label}`);
    const shown = (await card.getByTestId("kpi-value").textContent()).trim();
    if (k.value === null) {
      assert.equal(shown, "—", `${k.name} has no value`);
      continue;
    }
    if (k.format === "percent") {
      // a 0..1 ratio shown as a percentage with 3 significant digits ("3.68%")
      assert.match(shown, /%$/, `${k.name} is shown as a percentage: ${shown}`);
      assert.equal(Number((parseShown(shown) / 100).toPrecision(3)), Number(Number(k.value).toPrecision(3)), `${k.name}: page shows ${shown}, backend says ${k.value}`);
      continue;
    }
    const d = decimalsFor(k.format);
    assert.equal(parseShown(shown).toFixed(d), Number(k.value).toFixed(d), `${k.name}: page shows ${shown}, backend says ${k.value}`);
  }
}

/** Waits until the row count card shows the given figures' count (the answer to the latest request). */
async function waitForRowCount(kpis) {
  const rows = kpis.find((k) => k.name === "rows");
  const text = new Intl.NumberFormat("en-US").format(rows.value);
  await page.getByTestId("kpi-rows").getByTestId("kpi-value").filter({ hasText: new RegExp(`^${text}$`) }).waitFor();
}

describe("munero frontend in Chromium", () => {
  before(async () => {
    mkdirSync(RESULTS, { recursive: true });
    stack = await startStack();
    profileDir = mkdtempSync(join(tmpdir(), "munero-chromium-"));
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(30000);
    page.on("pageerror", (e) => console.error("page error:", e.message));
  });

  after(async () => {
    try {
      await context?.close();
    } finally {
      stack?.cleanup();
      if (profileDir) rmSync(profileDir, { recursive: true, force: true });
    }
  });

  test("dashboard shows the backend's KPI figures and the status from /health", async () => {
    const expected = await backendJson("/api/dashboard/kpis");
    assert.ok(expected.kpis.some((k) => k.name === "rows"), "backend reports a rows KPI");
    await page.goto(stack.webUrl + "/");
    await expectKpisMatch(expected.kpis);
    const status = page.getByTestId("status");
    await status.getByText("Data loaded", { exact: true }).waitFor();
    await status.getByText("Model ready", { exact: true }).waitFor();
    await page.getByTestId("timeseries").locator(".recharts-area-area").first().waitFor();
    await shot("dashboard");
  });

  test("a dimension filter changes the KPIs to the backend's filtered figures", async () => {
    const filters = await backendJson("/api/dashboard/filters");
    const dim = filters.dimensions.find((d) => d.values.length > 1);
    assert.ok(dim, "the sample data has a dimension with several values");
    const value = dim.values[0];
    const expected = await backendJson(`/api/dashboard/kpis?filter=${encodeURIComponent(`${dim.name}:${value}`)}`);
    await page.getByTestId(`filter-${dim.name}`).selectOption(value);
    await waitForRowCount(expected.kpis);
    await expectKpisMatch(expected.kpis);
    await page.getByRole("button", { name: "Reset filters" }).click();
    const unfiltered = (await backendJson("/api/dashboard/kpis")).kpis;
    await waitForRowCount(unfiltered);
    await expectKpisMatch(unfiltered);
  });

  test("switching granularity redraws the time series by month and by week", async () => {
    const ts = page.getByTestId("timeseries");
    await page.getByTestId("granularity-day").click();
    await page.locator('[data-testid="timeseries"][data-granularity="day"]').waitFor();
    const dayPoints = Number(await ts.getAttribute("data-points"));
    assert.match(await ts.getAttribute("data-first-period"), /^\d{4}-\d{2}-\d{2}$/);

    await page.getByTestId("granularity-month").click();
    await page.locator('[data-testid="timeseries"][data-granularity="month"]').waitFor();
    assert.match(await ts.getAttribute("data-first-period"), /^\d{4}-\d{2}$/);
    const monthPoints = Number(await ts.getAttribute("data-points"));
    assert.ok(monthPoints > 0 && monthPoints < dayPoints, `month points ${monthPoints} < day points ${dayPoints}`);
    await ts.locator(".recharts-area-area").first().waitFor();
    await shot("dashboard-month");

    await page.getByTestId("granularity-week").click();
    await page.locator('[data-testid="timeseries"][data-granularity="week"]').waitFor();
    assert.match(await ts.getAttribute("data-first-period"), /^\d{4}-W\d{2}$/);
  });

  test("the date range preset for all data shows the backend's figures for the whole range", async () => {
    const { date_min, date_max } = await backendJson("/api/dashboard/filters");
    const expected = await backendJson(`/api/dashboard/kpis?start=${date_min}&end=${date_max}`);
    await page.getByTestId("range-all").click();
    await waitForRowCount(expected.kpis);
    await expectKpisMatch(expected.kpis);
    await page.getByTestId("granularity-month").click();
    await page.locator('[data-testid="timeseries"][data-granularity="month"]').waitFor();
    const months = (await backendJson(`/api/dashboard/timeseries?granularity=month&start=${date_min}&end=${date_max}`)).points.length;
    await page.locator(`[data-testid="timeseries"][data-points="${months}"]`).waitFor();
    await shot("dashboard-all-data");
  });

  test("while a new file is prepared the dashboard shows the progress, and its figures as they arrive", async () => {
    const site = await stack.slowBuildSite();
    await page.goto(site.webUrl + "/");
    const progress = page.getByTestId("data-progress");
    await progress.filter({ hasText: /Preparing your data: \d+% \([\d.]+K? of 20K rows\)/ }).waitFor();
    assert.equal(await progress.getByRole("progressbar").count(), 1);
    // The default view's KPIs show while the older days are still being read.
    await page.getByTestId("kpi-rows").getByTestId("kpi-value").filter({ hasText: /^[\d,]+$/ }).waitFor();
    assert.ok(await progress.isVisible(), "the build was still running when the KPIs arrived");
    // The next poll (each second) says from which day on the charts are answered from memory.
    await progress.filter({ hasText: /Charts from \w{3} \d+, \d{4} on are ready/ }).waitFor();
    await shot("dashboard-preparing");
    const status = await (await fetch(site.backendUrl + "/api/dashboard/test")).json();
    assert.equal(status.cache, "building");
    await progress.waitFor({ state: "detached", timeout: 90000 });
    const after = await (await fetch(site.backendUrl + "/api/dashboard/test")).json();
    assert.equal(after.cache, "ready");
    const kpis = (await (await fetch(site.backendUrl + "/api/dashboard/kpis")).json()).kpis;
    await expectKpisMatch(kpis);
  });

  test("the assistant answers an example question with a chart, the SQL and rows", async () => {
    await page.goto(stack.webUrl + "/assistant");
    const examples = page.getByTestId("examples").locator("button");
    await examples.first().waitFor();
    const backendExamples = (await backendJson("/api/chat/examples")).questions;
    assert.deepEqual(await examples.allTextContents(), backendExamples);

    await page.getByTestId("question").fill("Revenue by country");
    await page.getByRole("button", { name: "Ask" }).click();
    await page.getByTestId("thinking").waitFor();
    const answer = page.getByTestId("answer").last();
    await answer.waitFor({ timeout: 60000 });
    assert.equal(await answer.getAttribute("data-state"), "ok", await answer.textContent());

    const chart = answer.getByTestId("answer-chart");
    await chart.waitFor();
    const type = await chart.getAttribute("data-chart-type");
    if (type !== "kpi") await chart.locator("svg.recharts-surface").first().waitFor();

    const rowsShown = await answer.getByTestId("rows").locator("tbody tr").count();
    assert.ok(rowsShown > 0, "rows are shown");
    const sql = answer.getByTestId("sql");
    await sql.locator("summary").click();
    assert.match(await sql.locator("pre").textContent(), /^\s*SELECT/i);
    await shot("assistant");
  });

  test("a question in progress shows the elapsed time and can be cancelled", async () => {
    await page.getByTestId("question").fill("Revenue by month");
    await page.getByRole("button", { name: "Ask" }).click();
    const thinking = page.getByTestId("thinking");
    await thinking.waitFor();
    assert.match(await thinking.getByTestId("elapsed").textContent(), /^\d+s$/);
    await shot("assistant-thinking");
    await thinking.getByRole("button", { name: "Cancel" }).click();
    await page.getByTestId("cancelled").waitFor();
  });

  test("the conversation survives a reload within the session", async () => {
    await page.reload();
    await page.getByTestId("answer").first().waitFor();
    assert.equal(await page.locator(".turn-q").count(), 2);
    await page.getByTestId("cancelled").waitFor();
  });

  test("a capped result is paginated and says it was capped", async () => {
    // The stub runs the SQL written between __sql__ and __end__ (see tests/ollama_stub/README.md).
    await page.getByTestId("question").fill("List the orders __sql__SELECT * FROM orders__end__");
    await page.getByRole("button", { name: "Ask" }).click();
    const answer = page.getByTestId("answer").nth(1);
    await answer.waitFor({ timeout: 60000 });
    const note = answer.getByTestId("truncated-note");
    await note.waitFor();
    assert.match(await note.textContent(), /capped/);
    const summary = answer.getByTestId("rows-summary");
    const total = Number((await summary.textContent()).match(/of (\d+)/)[1]);
    assert.ok(total > 10, `more rows than one page (${total})`);
    assert.equal(await summary.textContent(), `Rows 1–10 of ${total}`);
    await answer.getByRole("button", { name: "Next" }).click();
    await summary.filter({ hasText: `Rows 11–20 of ${total}` }).waitFor();
    await shot("assistant-capped");
  });

  test("without a database the pages say no data is loaded yet", async () => {
    const url = await stack.degradedSite("nodata", { withData: false, withModel: false });
    await page.goto(url + "/");
    const notice = page.getByTestId("notice");
    await notice.getByText("No data loaded yet", { exact: true }).waitFor();
    assert.match(await notice.textContent(), /no data loaded yet: /);
    const status = page.getByTestId("status");
    await status.getByText("No data loaded", { exact: true }).waitFor();
    await status.getByText("Model unavailable", { exact: true }).waitFor();
    await shot("dashboard-no-data");

    await page.goto(url + "/assistant");
    await page.getByText("Example questions appear here once data is loaded.").waitFor();
    await page.getByTestId("question").fill("Revenue by country");
    await page.getByRole("button", { name: "Ask" }).click();
    await page.getByTestId("answer-failed").getByText("No data loaded yet", { exact: true }).waitFor();
  });

  test("with the model server down the assistant says the model is unavailable and the dashboard still works", async () => {
    const url = await stack.degradedSite("nomodel", { withData: true, withModel: false });
    await page.goto(url + "/");
    await page.getByTestId("kpi-rows").waitFor();
    const status = page.getByTestId("status");
    await status.getByText("Data loaded", { exact: true }).waitFor();
    await status.getByText("Model unavailable", { exact: true }).waitFor();

    await page.goto(url + "/assistant");
    await page.getByTestId("question").fill("Revenue by country");
    await page.getByRole("button", { name: "Ask" }).click();
    const failed = page.getByTestId("answer-failed");
    await failed.getByText("Model unavailable", { exact: true }).waitFor();
    assert.match(await failed.textContent(), /not reachable|not found|unavailable/i);
    await shot("assistant-model-down");
  });
});
