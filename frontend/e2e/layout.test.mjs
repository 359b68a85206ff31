// The client's first minutes on phones and desktops, on the sample and on three schemas the app
// has not seen (backend/scripts/make_test_schemas.py): no horizontal scroll at 390 px, pies with
// percentages, zero-filled time series and plain error messages. Screenshots of the dashboard and
// the assistant at both widths per schema go to test-results/screenshots/ (paths printed).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS, RESULTS, startStack } from "./harness.mjs";

const SHOTS = join(RESULTS, "screenshots");
const VIEWPORTS = [
  { name: "390", width: 390, height: 844 },
  { name: "1440", width: 1440, height: 900 },
];

let stack;
let browser;
let profileDir;
const sites = {};

async function json(base, path) {
  const r = await fetch(base + path);
  assert.equal(r.status, 200, `${path} answered ${r.status}`);
  return r.json();
}

/** Widest thing on the page against the viewport: the page must not scroll sideways. */
async function assertNoHorizontalOverflow(page, what) {
  const m = await page.evaluate(() => ({
    doc: document.documentElement.scrollWidth,
    body: document.body.scrollWidth,
    inner: window.innerWidth,
  }));
  assert.ok(m.doc <= m.inner && m.body <= m.inner, `${what}: page is ${Math.max(m.doc, m.body)} px wide in a ${m.inner} px window`);
}

async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  const path = join(SHOTS, `${name}.png`);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
}

async function newPage(vp) {
  const ctx = await browser.newContext({ viewport: { width: vp.width, height: vp.height } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(30000);
  page.on("pageerror", (e) => console.error("page error:", e.message));
  return page;
}

async function ask(page, question) {
  const before = await page.getByTestId("answer").count();
  await page.getByTestId("question").fill(question);
  await page.getByRole("button", { name: "Ask" }).click();
  const answer = page.getByTestId("answer").nth(before);
  await answer.waitFor({ timeout: 60000 });
  return answer;
}

describe("layout and answers on several schemas in Chromium", () => {
  before(async () => {
    stack = await startStack();
    sites.sample = { backendUrl: stack.backendUrl, webUrl: stack.webUrl };
    for (const kind of ["star", "chinook", "giftcards"]) sites[kind] = await stack.schemaSite(kind);
    profileDir = mkdtempSync(join(tmpdir(), "munero-chromium-layout-"));
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium", headless: true, args: CHROMIUM_ARGS });
  });

  after(async () => {
    try {
      await browser?.close();
    } finally {
      stack?.cleanup();
      if (profileDir) rmSync(profileDir, { recursive: true, force: true });
    }
  });

  for (const vp of VIEWPORTS) {
    test(`no page scrolls sideways at ${vp.width}x${vp.height}; screenshots of every schema`, async () => {
      const page = await newPage(vp);
      try {
        for (const [kind, site] of Object.entries(sites)) {
          const profile = await json(site.backendUrl, "/api/dashboard/profile");
          await page.goto(site.webUrl + "/");
          await page.getByTestId("kpi-rows").waitFor();
          await page.getByTestId("kpi-rows").getByText(profile.measures[0].label).waitFor();
          await page.getByTestId("timeseries").locator(".recharts-area-area").first().waitFor();
          await page.getByTestId("top").locator(".recharts-bar-rectangle").first().waitFor();
          const status = page.getByTestId("status");
          await status.waitFor();
          if (vp.width < 640) {
            // the status collapses to one dot; the words are in its tooltip
            await page.getByTestId("status-dot").locator(".dot.ok").waitFor();
            assert.equal(await status.getByText("Data loaded").isVisible(), false);
            assert.match(await page.getByTestId("status-dot").getAttribute("title"), /^Data loaded · Model ready/);
          } else {
            await status.getByText("Model ready", { exact: true }).waitFor();
            assert.equal(await page.getByTestId("status-dot").isVisible(), false);
          }
          // the profile's reasons are there for the curious, folded
          const notes = page.getByTestId("profile-notes");
          await notes.locator("summary").click();
          assert.match(await notes.textContent(), new RegExp(`Facts: ${profile.fact_table} `));
          await assertNoHorizontalOverflow(page, `${kind} dashboard`);
          await notes.locator("summary").click();
          await shot(page, `${kind}-dashboard-${vp.name}`);

          await page.goto(site.webUrl + "/assistant");
          const examples = page.getByTestId("examples").locator("button");
          await examples.first().waitFor();
          const first = await examples.first().textContent();
          assert.match(first, /^(Which|How|What) [a-z0-9 ]+\?$/i, `an example in plain English: ${first}`);
          assert.ok(!/_/.test(first), `no column names in examples: ${first}`);
          await examples.first().click();
          const answer = page.getByTestId("answer").first();
          await answer.waitFor({ timeout: 60000 });
          assert.equal(await answer.getAttribute("data-state"), "ok");
          await answer.getByTestId("answer-chart").waitFor();
          const title = await answer.getByTestId("answer-title").textContent();
          assert.ok(!title.includes("_"), `the title is humanised: ${title}`);
          const heads = await answer.getByTestId("rows").locator("th").allTextContents();
          assert.ok(heads.every((h) => !h.includes("_")), `captions are humanised: ${heads.join(", ")}`);
          await assertNoHorizontalOverflow(page, `${kind} assistant`);
          await shot(page, `${kind}-assistant-${vp.name}`);
        }
      } finally {
        await page.context().close();
      }
    });
  }

  test("at 360 px, the narrowest phone we support, nothing scrolls sideways either", async () => {
    const page = await newPage({ width: 360, height: 740 });
    try {
      await page.goto(sites.chinook.webUrl + "/");
      await page.getByTestId("top").locator(".recharts-bar-rectangle").first().waitFor();
      await assertNoHorizontalOverflow(page, "dashboard at 360");
      await page.goto(sites.chinook.webUrl + "/assistant");
      await page.getByTestId("examples").locator("button").first().waitFor();
      await assertNoHorizontalOverflow(page, "assistant at 360");
    } finally {
      await page.context().close();
    }
  });

  test("choosing a category narrows the other filters; the date inputs show the range in use", async () => {
    const page = await newPage(VIEWPORTS[1]);
    try {
      const { date_min, date_max } = await json(sites.star.backendUrl, "/api/dashboard/filters");
      await page.goto(sites.star.webUrl + "/");
      await page.getByTestId("kpi-rows").waitFor();
      // no dates chosen: the inputs show the default last 90 days, not empty fields
      const start = new Date(Date.parse(date_max) - 89 * 86400000).toISOString().slice(0, 10);
      assert.equal(await page.getByTestId("filter-start").inputValue(), start);
      assert.equal(await page.getByTestId("filter-end").inputValue(), date_max);
      const brands = page.getByTestId("filter-brand").locator("option");
      assert.equal(await brands.count(), 9, "All and 8 brands");
      // products of one category come from 4 of the 8 brands (backend/scripts/make_test_schemas.py)
      await page.getByTestId("filter-product_category").selectOption("Toys");
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="filter-brand"] option').length === 5);
      const all = { start: date_min, end: date_max };
      const q = new URLSearchParams({ ...all, dimension: "brand", measure: "rows", n: "100", filter: "product_category:Toys" });
      const want = (await json(sites.star.backendUrl, `/api/dashboard/top?${q}`)).items.map((i) => i.label).sort();
      const shown = (await brands.allTextContents()).slice(1).sort();
      assert.deepEqual(shown, want);
    } finally {
      await page.context().close();
    }
  });

  test("a pie shows each slice's percentage and sums the smallest as Other", async () => {
    const page = await newPage(VIEWPORTS[0]);
    try {
      await page.goto(sites.giftcards.webUrl + "/assistant");
      const answer = await ask(
        page,
        "Share of face value by country __chart_pie__ __sql__SELECT country AS country, SUM(face_value) AS total_face_value FROM gc_sales GROUP BY country__end__",
      );
      const chart = answer.getByTestId("answer-chart");
      assert.equal(await chart.getAttribute("data-chart-type"), "pie");
      await chart.locator(".recharts-legend-item-text").first().waitFor();
      const legend = await chart.locator(".recharts-legend-item-text").allTextContents();
      assert.equal(legend.length, 8, `7 countries and Other: ${legend.join(" | ")}`);
      assert.match(legend[7], /^Other \d+(\.\d+)?%$/);
      const pcts = legend.map((t) => Number(t.match(/([\d.]+)%$/)[1]));
      const sum = pcts.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 100) < 1, `shares add up to 100%: ${sum}`);
      // the figures behind the largest slice, from the database
      const rows = (await json(sites.giftcards.backendUrl, "/api/dashboard/top?dimension=country&measure=face_value&n=20&start=2024-01-01&end=2024-12-31")).items;
      const total = rows.reduce((a, r) => a + r.value, 0);
      assert.ok(Math.abs(pcts[0] - (rows[0].value / total) * 100) < 0.1, `largest slice ${pcts[0]}% of ${rows[0].label}`);
      assert.ok(legend[0].startsWith(rows[0].label));
      await assertNoHorizontalOverflow(page, "pie answer");
      await shot(page, "giftcards-assistant-pie-390");
    } finally {
      await page.context().close();
    }
  });

  test("a failing question reads as plain words naming columns that exist; the SQL stays under the fold", async () => {
    const page = await newPage(VIEWPORTS[0]);
    try {
      await page.goto(sites.giftcards.webUrl + "/assistant");
      const answer = await ask(page, "Margin by country __stubborn__ __sql__SELECT country, SUM(margin) AS m FROM gc_sales GROUP BY country__end__");
      assert.equal(await answer.getAttribute("data-state"), "error");
      const msg = (await answer.getByTestId("answer-error").textContent()).trim();
      assert.match(msg, /There is no 'margin' column\. Try: face value, discount/);
      assert.ok(!/no such column|attempts/.test(msg), msg);
      const sql = answer.getByTestId("sql");
      assert.equal(await sql.locator("pre").isVisible(), false, "the SQL is folded");
      await sql.locator("summary").click();
      assert.match(await sql.locator("pre").textContent(), /SUM\(margin\)/);
      assert.match(await sql.getByTestId("sql-detail").textContent(), /no such column: margin/);
      await shot(page, "giftcards-assistant-error-390");
    } finally {
      await page.context().close();
    }
  });

  test("a single figure gets a humanised caption, and an aggregate gets no LIMIT", async () => {
    const page = await newPage(VIEWPORTS[1]);
    try {
      await page.goto(sites.giftcards.webUrl + "/assistant");
      const answer = await ask(page, "Total face value __sql__SELECT SUM(face_value) AS total_face_value FROM gc_sales__end__");
      assert.equal(await answer.getByTestId("kpi-caption").textContent(), "Total face value");
      const sql = answer.getByTestId("sql");
      await sql.locator("summary").click();
      assert.equal((await sql.locator("pre").textContent()).trim(), "SELECT SUM(face_value) AS total_face_value FROM gc_sales");
      const shown = await answer.getByTestId("answer-chart").textContent();
      assert.match(shown, /^\d{1,3}(,\d{3})+/, `thousands separators: ${shown}`);
      // a ratio reads as a percentage, as on the dashboard
      const ratio = await ask(page, "Average discount __sql__SELECT AVG(discount) AS avg_discount FROM gc_sales__end__");
      const pct = (await ratio.getByTestId("answer-chart").textContent()).replace("Avg discount", "");
      const { date_min, date_max } = await json(sites.giftcards.backendUrl, "/api/dashboard/filters");
      const k = (await json(sites.giftcards.backendUrl, `/api/dashboard/kpis?start=${date_min}&end=${date_max}`)).kpis.find((x) => x.name === "avg_discount");
      assert.equal(pct, `${Number((k.value * 100).toPrecision(3))}%`);
    } finally {
      await page.context().close();
    }
  });

  test("sparse daily data is drawn over every day of the range, empty days as zero", async () => {
    const page = await newPage(VIEWPORTS[1]);
    try {
      const { date_min, date_max } = await json(sites.chinook.backendUrl, "/api/dashboard/filters");
      await page.goto(sites.chinook.webUrl + "/");
      await page.getByTestId("range-30d").click();
      const ts = page.getByTestId("timeseries");
      // 30 days default to a daily chart without asking
      await page.locator('[data-testid="timeseries"][data-granularity="day"][data-points="30"]').waitFor();
      const start = new Date(Date.parse(date_max) - 29 * 86400000).toISOString().slice(0, 10);
      const points = (await json(sites.chinook.backendUrl, `/api/dashboard/timeseries?granularity=day&measure=revenue&start=${start}&end=${date_max}`)).points;
      assert.equal(points.length, 30);
      assert.ok(points.some((p) => p.value === 0), "some days have no invoices");
      assert.equal(await ts.getAttribute("data-first-period"), start);
      assert.ok(date_min < start);
      // 90 days of the same data default to weeks
      await page.getByTestId("range-90d").click();
      await page.locator('[data-testid="timeseries"][data-granularity="week"]').waitFor();
      // weeks cut by the range's ends are said to be partial
      const s90 = new Date(Date.parse(date_max) - 89 * 86400000);
      const cutWeeks = s90.getUTCDay() !== 1 || new Date(Date.parse(date_max)).getUTCDay() !== 0;
      await page.locator('[data-testid="timeseries"][data-granularity="week"] .recharts-area-area').waitFor();
      assert.equal(await page.getByTestId("partial-note").count(), cutWeeks ? 1 : 0);
      if (cutWeeks) assert.match(await page.getByTestId("partial-note").textContent(), /partly in the range/);
    } finally {
      await page.context().close();
    }
  });

  test("a filtered dimension is not offered as the breakdown, (top 10) shows only when the list is cut, All data compares with nothing", async () => {
    const page = await newPage(VIEWPORTS[1]);
    try {
      await page.goto(sites.giftcards.webUrl + "/");
      const pick = page.getByTestId("top-dimension");
      await page.getByTestId("top").locator(".recharts-bar-rectangle").first().waitFor();
      const dims = await pick.locator("option").evaluateAll((os) => os.map((o) => o.value));
      assert.ok(dims.includes("country") && dims.includes("channel"));
      await pick.selectOption("country");
      await page.getByTestId("top-cut").waitFor(); // 13 countries: cut to 10
      await pick.selectOption("channel");
      await page.locator('[data-testid="top"][data-items="3"]').waitFor();
      assert.equal(await page.getByTestId("top-cut").count(), 0, "3 channels are all there is");
      await page.getByTestId("filter-channel").selectOption("Web");
      await page.waitForFunction(() => ![...document.querySelectorAll('[data-testid="top-dimension"] option')].some((o) => o.value === "channel"));
      assert.notEqual(await pick.inputValue(), "channel");
      // "All data" has nothing before it: no comparison with an empty period
      await page.getByTestId("range-all").click();
      await page.getByTestId("kpi-rows").getByText("nothing earlier to compare").waitFor();
      assert.doesNotMatch(await page.getByTestId("period").textContent(), /compared with/);
      assert.equal(await page.locator(".change.good, .change.bad").count(), 0);
    } finally {
      await page.context().close();
    }
  });
});
