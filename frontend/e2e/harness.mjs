// Starts the real pieces for the browser test: the Ollama API stub, the backend on a sample
// SQLite file, and the built frontend's standalone server. Every process is started in its own
// process group and killed at the end, also when a step fails.
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const FRONTEND = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = resolve(FRONTEND, "..");
export const RESULTS = join(FRONTEND, "test-results");

const children = [];

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** Starts a long-running process with its output in test-results/logs/<name>.log. */
export function start(name, cmd, args, opts = {}) {
  mkdirSync(join(RESULTS, "logs"), { recursive: true });
  const log = openSync(join(RESULTS, "logs", `${name}.log`), "w");
  const child = spawn(cmd, args, { ...opts, detached: true, stdio: ["ignore", log, log] });
  child.name = name;
  children.push(child);
  child.on("exit", (code, signal) => {
    child.exited = { code, signal };
  });
  return child;
}

export function stopAll() {
  for (const c of children.splice(0)) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    try {
      process.kill(-c.pid, "SIGTERM");
    } catch {
      /* already gone */
    }
  }
}

// Last resort when the runner is interrupted: no stray servers left behind.
process.on("exit", () => {
  for (const c of children) {
    try {
      process.kill(-c.pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

/** Polls url until `ok(status)`; fails early when the process behind it exits. */
export async function waitFor(url, child, ok = (s) => s === 200, timeoutMs = 120000) {
  const until = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < until) {
    if (child?.exited) throw new Error(`${child.name} exited (${JSON.stringify(child.exited)}) before ${url} answered; see test-results/logs/${child.name}.log`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
      if (ok(r.status)) return r;
      last = `status ${r.status}`;
    } catch (e) {
      last = String(e?.cause?.code ?? e);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not become ready: ${last}`);
}

function python() {
  const venv = join(ROOT, "backend/.venv/bin/python");
  return existsSync(venv) ? venv : "python3";
}

async function startBackend(name, { db, stateDir, ollamaUrl, env = {} }) {
  const port = await freePort();
  const child = start(name, join(ROOT, "backend/.venv/bin/uvicorn"), ["main:app", "--host", "127.0.0.1", "--port", String(port)], {
    cwd: join(ROOT, "backend"),
    env: { ...process.env, DB_PATH: db, OLLAMA_BASE_URL: ollamaUrl, APP_STATE_DIR: stateDir, ...env },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/health`, child, (s) => s === 200 || s === 503);
  return url;
}

async function startFrontend(name, backendUrl) {
  const port = await freePort();
  const child = start(name, process.execPath, [join(FRONTEND, ".next/standalone/server.js")], {
    cwd: join(FRONTEND, ".next/standalone"),
    env: { ...process.env, PORT: String(port), HOSTNAME: "127.0.0.1", BACKEND_URL: backendUrl, NODE_ENV: "production", NEXT_TELEMETRY_DISABLED: "1" },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/`, child);
  return url;
}

/** Brings up stub, backend and frontend; returns their URLs. */
export async function startStack({ rows = 20000, seed = 7 } = {}) {
  const standalone = join(FRONTEND, ".next/standalone/server.js");
  if (!existsSync(standalone)) throw new Error("no production build: run `npx next build` in frontend/ first");
  // The standalone server serves static assets only from its own folder.
  cpSync(join(FRONTEND, ".next/static"), join(FRONTEND, ".next/standalone/.next/static"), { recursive: true });
  cpSync(join(FRONTEND, "public"), join(FRONTEND, ".next/standalone/public"), { recursive: true });

  const uvicorn = join(ROOT, "backend/.venv/bin/uvicorn");
  if (!existsSync(uvicorn)) throw new Error("backend venv missing: run scripts/test-backend.sh set-up or python3 -m venv backend/.venv && backend/.venv/bin/pip install -r backend/requirements.txt");

  const tmp = mkdtempSync(join(tmpdir(), "munero-e2e-"));
  try {
    return await bringUp(tmp, rows, seed);
  } catch (e) {
    stopAll();
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

async function bringUp(tmp, rows, seed) {
  const db = join(tmp, "munero.sqlite");
  const made = spawnSync(python(), [join(ROOT, "backend/scripts/make_sample_db.py"), "--rows", String(rows), "--seed", String(seed), "--out", db], {
    encoding: "utf8",
  });
  if (made.status !== 0) throw new Error(`make_sample_db.py failed: ${made.stderr || made.stdout}`);
  mkdirSync(join(tmp, "state"));

  const stubPort = await freePort();
  // A short delay on model calls keeps the "thinking" state on screen long enough to be seen and cancelled.
  const stub = start("ollama-stub", "python3", [join(ROOT, "tests/ollama_stub/stub.py"), "--host", "127.0.0.1", "--port", String(stubPort)], {
    env: { ...process.env, STUB_DELAY_MS: process.env.E2E_STUB_DELAY_MS ?? "1500" },
  });
  const stubUrl = `http://127.0.0.1:${stubPort}`;
  await waitFor(`${stubUrl}/api/version`, stub);

  const backendUrl = await startBackend("backend", { db, stateDir: join(tmp, "state"), ollamaUrl: stubUrl });
  const webUrl = await startFrontend("frontend", backendUrl);

  return {
    backendUrl,
    webUrl,
    stubUrl,
    /** Backend + frontend over one of backend/scripts/make_test_schemas.py's schemas (star, chinook, giftcards). */
    async schemaSite(kind) {
      const file = join(tmp, `${kind}.sqlite`);
      const made = spawnSync(python(), [join(ROOT, "backend/scripts/make_test_schemas.py"), "--kind", kind, "--out", file], { encoding: "utf8" });
      if (made.status !== 0) throw new Error(`make_test_schemas.py ${kind} failed: ${made.stderr || made.stdout}`);
      const stateDir = join(tmp, `state-${kind}`);
      mkdirSync(stateDir);
      const backend = await startBackend(`backend-${kind}`, { db: file, stateDir, ollamaUrl: stubUrl });
      return { backendUrl: backend, webUrl: await startFrontend(`frontend-${kind}`, backend) };
    },
    /** Backend + frontend on the sample file with a build of the column store slow enough to watch. */
    async slowBuildSite(pauseMs = 400) {
      const stateDir = join(tmp, "state-slow");
      mkdirSync(stateDir);
      const backend = await startBackend("backend-slow", {
        db,
        stateDir,
        ollamaUrl: stubUrl,
        env: { DASHBOARD_CACHE_PAUSE_MS: String(pauseMs), DASHBOARD_CACHE_WORKERS: "0" },
      });
      return { backendUrl: backend, webUrl: await startFrontend("frontend-slow", backend) };
    },
    /** A second backend + frontend pair for failure states: no database and/or no model server. */
    async degradedSite(name, { withData, withModel }) {
      const stateDir = join(tmp, `state-${name}`);
      mkdirSync(stateDir);
      const deadPort = await freePort(); // nothing listens there
      const url = await startBackend(`backend-${name}`, {
        db: withData ? db : join(tmp, "missing.sqlite"),
        stateDir,
        ollamaUrl: withModel ? stubUrl : `http://127.0.0.1:${deadPort}`,
      });
      return startFrontend(`frontend-${name}`, url);
    },
    cleanup() {
      stopAll();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
