// Real-browser check of the whole product: a migrated temp database with a key
// file and an API token made by the backend's own commands, the real backend
// on a free loopback port, the built UI in headless Chromium. It signs in,
// stores, reveals, copies, hides, deletes with confirmation and signs out, as
// a user would; a wrong token and a revoked one are refused in the page.
//
// Usage (from the repo root, after `cargo build -p backend -p secrets-ops` and
// `npm --prefix frontend run build`): `make e2e`, or
//   BACKEND_BIN=target/debug/backend OPS_BIN=target/debug/secrets-ops node frontend/e2e/e2e.mjs
// CHROMIUM_PATH overrides /usr/bin/chromium. Screenshots land in target/e2e/.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import {
  assert,
  assertEqual,
  backendCommand,
  check,
  cleanUp,
  createToken,
  dist,
  chromiumPath,
  fail,
  generateKey,
  migrate,
  pkg,
  setUp,
  shotDir,
  startBackend,
  summary,
  work,
} from "./harness.mjs";

const REJECTED = "token rejected: it may have been revoked";
const TOKEN_KEY = "secrets.token";

/** The API as a script would call it, with or without the token. */
async function api(base, path, token, init = {}) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  return fetch(`${base}${path}`, { ...init, headers });
}

function storedToken(page) {
  return page.evaluate((key) => sessionStorage.getItem(key), TOKEN_KEY);
}

async function signIn(page, token) {
  await page.fill("#token", token);
  await page.click("#sign-in-button");
}

/** Waits until the sign-in screen shows `text` (the app hidden, the token gone). */
async function expectSignInSaying(page, text) {
  await page.waitForSelector("#sign-in:not([hidden])", { timeout: 5_000 });
  await page.waitForFunction(
    (wanted) => document.getElementById("sign-in-message")?.textContent?.includes(wanted),
    text,
    { timeout: 5_000 },
  );
  assert(await page.locator("#app").isHidden(), "the app is still shown after the token was refused");
  assertEqual(await storedToken(page), null, "sessionStorage secrets.token after the refusal");
}

function launch() {
  return chromium.launchPersistentContext(join(work, "profile"), {
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
}

async function signInChecks(page, base, token) {
  await check("the page opens on sign-in, the token field is a password field, the footer shows v + version", async () => {
    await page.goto(base);
    await page.waitForFunction(() => document.getElementById("version")?.textContent !== "");
    assertEqual(await page.textContent("#version"), `v${pkg.version}`, "footer");
    assert(await page.locator("#sign-in").isVisible(), "no sign-in screen without a token");
    assert(await page.locator("#app").isHidden(), "the app shows before sign-in");
    assertEqual(await page.getAttribute("#token", "type"), "password", "token input type");
  });

  await check("a wrong token is refused in the page and not kept", async () => {
    await signIn(page, `sst_${"A".repeat(43)}`);
    await expectSignInSaying(page, REJECTED);
  });

  await check("the token from `backend token create` signs in, kept in sessionStorage only", async () => {
    await signIn(page, token);
    await page.waitForSelector("#app:not([hidden])", { timeout: 5_000 });
    assert((await storedToken(page)) === token, "sessionStorage secrets.token does not hold the token signed in with");
    assertEqual(await page.evaluate(() => localStorage.length), 0, "localStorage entries");
    assertEqual(await page.inputValue("#token"), "", "token field after sign-in");
  });
}

async function store(page, name, value, ttl) {
  await page.fill("#name", name);
  await page.fill("#value", value);
  await page.selectOption("#ttl", ttl);
  await page.click("#store");
  await page.waitForSelector(`li[data-name="${name}"]`, { timeout: 5_000 });
}

/** `2026-01-02T03:04:05Z` as the list shows it: `2026-01-02 03:04 UTC`. */
function listed(timestamp) {
  return `${timestamp.slice(0, 10)} ${timestamp.slice(11, 16)} UTC`;
}

async function listChecks(page, base, token, name, kept, value) {
  await check("secrets stored through the form are listed with their created and expiry dates", async () => {
    await store(page, name, value, "");
    assertEqual(await page.textContent("#message"), `Stored ${name}.`, "status message");
    await store(page, kept, "kept value", "3600");
    const body = await (await api(base, "/api/secrets", token)).json();
    const meta = Object.fromEntries(body.secrets.map((secret) => [secret.name, secret]));
    const item = page.locator(`li[data-name="${name}"]`);
    assertEqual(await item.locator("time.created").getAttribute("datetime"), meta[name].created_at, "created datetime");
    assertEqual(await item.locator("time.created").textContent(), `created ${listed(meta[name].created_at)}`, "created");
    assertEqual(await item.locator(".expires").textContent(), "never expires", "expiry without ttl");
    const expires = page.locator(`li[data-name="${kept}"] time.expires`);
    assertEqual(await expires.getAttribute("datetime"), meta[kept].expires_at, "expires datetime");
    assertEqual(await expires.textContent(), `expires ${listed(meta[kept].expires_at)}`, "expiry after 1 hour");
  });
}

async function revealChecks(page, base, name, value) {
  const item = page.locator(`li[data-name="${name}"]`);
  await check("Reveal shows the stored value", async () => {
    await item.locator("button.reveal").click();
    await item.locator(".secret-value").waitFor({ timeout: 5_000 });
    assertEqual(await item.locator(".secret-value").textContent(), value, "revealed value");
  });

  await check("Copy puts the value on the clipboard and says so", async () => {
    await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
    await item.locator("button.copy").click();
    await page.waitForFunction(() => document.getElementById("message")?.textContent?.startsWith("Copied"));
    assertEqual(await page.textContent("#message"), `Copied ${name} to the clipboard.`, "copy report");
    assertEqual(await page.evaluate(() => navigator.clipboard.readText()), value, "clipboard");
  });

  await check("Hide removes the value from the page, not only from view", async () => {
    await item.locator("button.hide").click();
    assertEqual(await item.locator(".secret-value").count(), 0, "value elements after Hide");
    assert(!(await page.content()).includes(value), "the hidden value is still in the page's HTML");
  });
}

async function deleteChecks(page, base, token, name) {
  const item = page.locator(`li[data-name="${name}"]`);
  await check("Delete asks in a dialog naming the secret; Cancel keeps it", async () => {
    await item.locator("button.delete").click();
    await page.waitForSelector("#confirm-delete[open]", { timeout: 5_000 });
    const question = (await page.textContent("#confirm-delete-text")) ?? "";
    assert(question.includes(name), `the dialog does not name the secret: ${question}`);
    await page.click("#cancel-delete");
    await page.waitForSelector("#confirm-delete:not([open])", { state: "attached", timeout: 5_000 });
    // The dialog's `close` event, which says "Kept", comes a task after
    // the `open` attribute goes: wait for the words, then compare them.
    await page
      .waitForFunction((text) => document.querySelector("#message")?.textContent === text, `Kept ${name}.`, {
        timeout: 5_000,
      })
      .catch(() => {});
    assertEqual(await page.textContent("#message"), `Kept ${name}.`, "status message");
    assertEqual((await api(base, `/api/secrets/${name}`, token)).status, 200, "reveal after Cancel");
  });

  await check("confirming the dialog deletes the secret", async () => {
    await item.locator("button.delete").click();
    await page.waitForSelector("#confirm-delete[open]", { timeout: 5_000 });
    await page.click("#confirm-delete-button");
    await item.waitFor({ state: "detached", timeout: 5_000 });
    assertEqual(await page.textContent("#message"), `Deleted ${name}.`, "status message");
    assertEqual((await api(base, `/api/secrets/${name}`, token)).status, 404, "reveal after delete");
  });
}

async function sessionChecks(page, base, token, kept) {
  await check("the API answers 401 without the token and the value with it", async () => {
    assertEqual((await api(base, `/api/secrets/${kept}`)).status, 401, "reveal without a token");
    assertEqual((await (await api(base, `/api/secrets/${kept}`, token)).json()).value, "kept value", "value");
    const health = await (await fetch(`${base}/health`)).json();
    assertEqual(health.status, "ok", "health status");
    assertEqual(health.version, pkg.version, "backend version");
  });

  await check("a reload keeps the tab signed in", async () => {
    await page.reload();
    await page.waitForSelector(`li[data-name="${kept}"]`, { timeout: 5_000 });
    assert(await page.locator("#sign-in").isHidden(), "sign-in shows again after a reload");
  });

  mkdirSync(shotDir, { recursive: true });
  await page.screenshot({ path: join(shotDir, "ui.png"), fullPage: true });

  await check("Sign out forgets the token and removes every secret from the page", async () => {
    await page.click("#sign-out");
    await expectSignInSaying(page, "Signed out.");
    assertEqual(await page.locator("#secrets li").count(), 0, "list items after sign-out");
    assert(!(await page.content()).includes(kept), "a secret's name is still in the page after sign-out");
  });
}

async function revokedChecks(page, token, kept) {
  await check("a token revoked while signed in sends the page back to sign-in", async () => {
    await signIn(page, token);
    await page.waitForSelector(`li[data-name="${kept}"]`, { timeout: 5_000 });
    backendCommand("token", "revoke", "e2e");
    await page.locator(`li[data-name="${kept}"] button.reveal`).click();
    await expectSignInSaying(page, REJECTED);
    await page.screenshot({ path: join(shotDir, "revoked.png"), fullPage: true });
  });
}

async function main(context) {
  migrate();
  generateKey();
  const token = createToken("e2e");
  const base = await startBackend();
  console.log(`e2e: backend at ${base}, UI from ${dist}`);
  context.value = await launch();
  const page = context.value.pages()[0] ?? (await context.value.newPage());
  // The content security policy must not block anything the UI itself needs.
  const blocked = [];
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) blocked.push(message.text());
  });
  const name = `e2e.secret-${Date.now()}`;
  const kept = `${name}.kept`;
  await signInChecks(page, base, token);
  await listChecks(page, base, token, name, kept, "correct horse battery staple");
  await revealChecks(page, base, name, "correct horse battery staple");
  await deleteChecks(page, base, token, name);
  await sessionChecks(page, base, token, kept);
  await revokedChecks(page, token, kept);

  await check("the content security policy blocked nothing the UI does", async () => {
    const policy = (await fetch(base)).headers.get("content-security-policy") ?? "";
    if (!policy.includes("script-src 'self'")) throw new Error(`no policy on the page: ${policy}`);
    if (blocked.length > 0) throw new Error(`blocked: ${blocked.join(" | ")}`);
  });
  console.log(`e2e: screenshots in ${shotDir}`);
}

setUp();
const context = { value: null };
let crashed = null;
try {
  await main(context);
} catch (error) {
  crashed = error;
} finally {
  await context.value?.close().catch(() => {});
  cleanUp();
}
if (crashed) fail(crashed instanceof Error ? crashed.message : String(crashed));
process.exit(summary() ? 0 : 1);
