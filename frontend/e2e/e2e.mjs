// Real-browser check of the whole product: a migrated temp database, the real
// backend on a free loopback port, the built UI in headless Chromium.
//
// Usage (from the repo root, after `cargo build -p backend -p xtask` and
// `npm --prefix frontend run build`): `make e2e`, or
//   BACKEND_BIN=target/debug/backend XTASK_BIN=target/debug/xtask node frontend/e2e/e2e.mjs
// CHROMIUM_PATH overrides /usr/bin/chromium. A screenshot lands in target/e2e/.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const pkg = JSON.parse(readFileSync(join(repo, "frontend/package.json"), "utf8"));
const backendBin = resolve(repo, process.env.BACKEND_BIN ?? "target/debug/backend");
const xtaskBin = resolve(repo, process.env.XTASK_BIN ?? "target/debug/xtask");
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const dist = join(repo, "frontend/dist");
const shotDir = join(repo, "target/e2e");

function fail(message) {
  console.error(`e2e: ${message}`);
  process.exit(1);
}

for (const [what, path, fix] of [
  ["backend binary", backendBin, "cargo build -p backend"],
  ["xtask binary", xtaskBin, "cargo build -p xtask"],
  ["built UI", join(dist, "index.html"), "npm --prefix frontend run build"],
  ["Chromium", chromiumPath, "apt-get install -y chromium (or set CHROMIUM_PATH)"],
]) {
  if (!existsSync(path)) fail(`no ${what} at ${path}: run \`${fix}\``);
}

const work = mkdtempSync(join(tmpdir(), "secrets-e2e-"));
const databaseUrl = `sqlite:///${join(work, "e2e.db")}`;
const keyFile = join(work, "e2e.key");
let backend;
let context;
const results = [];

async function check(name, body) {
  try {
    await body();
    results.push([name, true]);
    console.log(`  ok    ${name}`);
  } catch (error) {
    results.push([name, false]);
    console.log(`  FAIL  ${name}: ${error instanceof Error ? error.message : error}`);
  }
}

function assertEqual(actual, expected, what) {
  if (actual !== expected) throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

function migrate() {
  const run = spawnSync(xtaskBin, ["migrate", "--create", "--database-url", databaseUrl], {
    encoding: "utf8",
  });
  if (run.status !== 0) fail(`cargo xtask migrate failed:\n${run.stdout}${run.stderr}`);
}

/** The key file the backend seals with, made by the backend itself. */
function generateKey() {
  const run = spawnSync(backendBin, ["key", "generate", keyFile], { encoding: "utf8" });
  if (run.status !== 0) fail(`backend key generate failed:\n${run.stdout}${run.stderr}`);
}

/** Starts the backend on port 0 and resolves with the address it bound. */
function startBackend() {
  return new Promise((resolveAddress, reject) => {
    backend = spawn(backendBin, [], {
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        SECRETS_KEY_FILE: keyFile,
        SECRETS_ADDR: "127.0.0.1:0",
        SECRETS_FRONTEND_DIR: dist,
        RUST_LOG: "info",
      },
      stdio: ["ignore", "inherit", "pipe"],
    });
    let log = "";
    const timer = setTimeout(() => reject(new Error(`backend did not start within 20 s:\n${log}`)), 20_000);
    backend.stderr.on("data", (chunk) => {
      log += chunk;
      const found = /listening on (http:\/\/[\d.:]+)/.exec(log);
      if (found) {
        clearTimeout(timer);
        resolveAddress(found[1]);
      }
    });
    backend.on("exit", (code) => reject(new Error(`backend exited with ${code}:\n${log}`)));
  });
}

async function main() {
  migrate();
  generateKey();
  const base = await startBackend();
  console.log(`e2e: backend at ${base}, UI from ${dist}`);
  context = await chromium.launchPersistentContext(join(work, "profile"), {
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-sync",
      "--disable-quic",
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  // The content security policy must not block anything the UI itself needs.
  const blocked = [];
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) blocked.push(message.text());
  });
  const name = `e2e.secret-${Date.now()}`;
  const value = "correct horse battery staple";

  await check("the page loads and the footer shows v + package.json version", async () => {
    await page.goto(base);
    await page.waitForFunction(() => document.getElementById("version")?.textContent !== "");
    assertEqual(await page.textContent("#version"), `v${pkg.version}`, "footer");
  });

  await check("a secret stored through the form appears in the list", async () => {
    await page.fill("#name", name);
    await page.fill("#value", value);
    await page.click("#store");
    await page.waitForSelector(`li[data-name="${name}"]`, { timeout: 5_000 });
    assertEqual(await page.textContent("#message"), `Stored ${name}.`, "status message");
  });

  await check("Reveal shows the stored value", async () => {
    const item = page.locator(`li[data-name="${name}"]`);
    await item.locator("button.reveal").click();
    await page.waitForFunction(
      (n) => document.querySelector(`li[data-name="${n}"] .secret-value`)?.textContent !== "",
      name,
    );
    assertEqual(await item.locator(".secret-value").textContent(), value, "revealed value");
  });

  await check("the backend holds the secret and reports the same version", async () => {
    const secret = await (await fetch(`${base}/api/secrets/${name}`)).json();
    assertEqual(secret.value, value, "stored value");
    const health = await (await fetch(`${base}/health`)).json();
    assertEqual(health.status, "ok", "health status");
    assertEqual(health.version, pkg.version, "backend version");
  });

  await check("the content security policy blocked nothing the UI does", async () => {
    const policy = (await fetch(base)).headers.get("content-security-policy") ?? "";
    if (!policy.includes("script-src 'self'")) throw new Error(`no policy on the page: ${policy}`);
    if (blocked.length > 0) throw new Error(`blocked: ${blocked.join(" | ")}`);
  });

  mkdirSync(shotDir, { recursive: true });
  await page.screenshot({ path: join(shotDir, "ui.png"), fullPage: true });
  console.log(`e2e: screenshot at ${join(shotDir, "ui.png")}`);
}

let crashed = null;
try {
  await main();
} catch (error) {
  crashed = error;
} finally {
  await context?.close().catch(() => {});
  backend?.kill("SIGTERM");
  rmSync(work, { recursive: true, force: true });
}
if (crashed) fail(crashed instanceof Error ? crashed.message : String(crashed));
const failed = results.filter(([, ok]) => !ok).length;
console.log(`e2e: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
