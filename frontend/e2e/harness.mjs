// What the browser check runs on: the real binaries, a temp folder holding the
// database and the key file, the backend on a free loopback port, and the
// `ok` / `FAIL` lines. e2e.mjs holds the checks themselves.
//
// No token, key or secret value is ever printed: the backend's commands are
// reported by their stderr only (stdout of `token create` is the token).

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const pkg = JSON.parse(readFileSync(join(repo, "frontend/package.json"), "utf8"));
export const backendBin = resolve(repo, process.env.BACKEND_BIN ?? "target/debug/backend");
export const opsBin = resolve(repo, process.env.OPS_BIN ?? "target/debug/secrets-ops");
export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const dist = join(repo, "frontend/dist");
export const shotDir = join(repo, "target/e2e");

export function fail(message) {
  console.error(`e2e: ${message}`);
  process.exit(1);
}

/** Stops before anything starts when a binary, the built UI or Chromium is missing. */
function requireInputs() {
  for (const [what, path, fix] of [
    ["backend binary", backendBin, "cargo build -p backend"],
    ["operations binary", opsBin, "cargo build -p secrets-ops"],
    ["built UI", join(dist, "index.html"), "npm --prefix frontend run build"],
    ["Chromium", chromiumPath, "apt-get install -y chromium (or set CHROMIUM_PATH)"],
  ]) {
    if (!existsSync(path)) fail(`no ${what} at ${path}: run \`${fix}\``);
  }
}

// Set by setUp: the temp folder, and the backend's settings for the service and
// its commands alike. The working directory is the temp folder too, so no
// default path (data/secrets.db, data/secrets.key) lands in the repository.
export let work;
let databaseUrl;
let keyFile;
let backendEnv;

/** Checks the inputs, then makes the temp folder that cleanUp removes. */
export function setUp() {
  requireInputs();
  work = mkdtempSync(join(tmpdir(), "secrets-e2e-"));
  databaseUrl = `sqlite:///${join(work, "e2e.db")}`;
  keyFile = join(work, "secrets.key");
  backendEnv = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    SECRETS_KEY_FILE: keyFile,
    SECRETS_ADDR: "127.0.0.1:0",
    SECRETS_FRONTEND_DIR: dist,
    RUST_LOG: "info",
  };
}

export function migrate() {
  const run = spawnSync(opsBin, ["migrate", "--create", "--database-url", databaseUrl], {
    encoding: "utf8",
  });
  if (run.status !== 0) fail(`secrets-ops migrate failed:\n${run.stdout}${run.stderr}`);
}

const COMMAND_TIMEOUT_MS = 30_000;

/**
 * Runs `backend ARGS…` against the e2e database and returns its stdout. A
 * failure reports the exit status and stderr, never stdout (it may be a token).
 */
export function backendCommand(...args) {
  // A backend built before its commands existed ignores the arguments and
  // serves: the timeout turns that into an error instead of a hang.
  const run = spawnSync(backendBin, args, {
    cwd: work,
    env: backendEnv,
    encoding: "utf8",
    timeout: COMMAND_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
  if (run.error?.code === "ETIMEDOUT") {
    throw new Error(
      `backend ${args.join(" ")} did not finish within ${COMMAND_TIMEOUT_MS / 1000} s: is ${backendBin} a build with this command? (rebuild: cargo build -p backend)`,
    );
  }
  if (run.error) throw new Error(`backend ${args.join(" ")} did not run: ${run.error.message}`);
  if (run.status !== 0) {
    throw new Error(`backend ${args.join(" ")} exited with ${run.status}:\n${run.stderr}`);
  }
  return run.stdout;
}

// `sst_` + 32 bytes in unpadded base64url, the spec's token format.
const TOKEN_FORMAT = /^sst_[A-Za-z0-9_-]{43}$/;

/** `backend token create NAME`: its stdout is the token alone, on one line. */
export function createToken(name) {
  const printed = backendCommand("token", "create", name);
  const token = printed.trim();
  if (printed !== `${token}\n` || !TOKEN_FORMAT.test(token)) {
    throw new Error(`backend token create ${name} printed something other than one sst_… token line`);
  }
  return token;
}

/** The key file the service refuses to start without (`backend key generate`). */
export function generateKey() {
  backendCommand("key", "generate", keyFile);
}

let backend;

/** Starts the backend on port 0 and resolves with the address it bound. */
export function startBackend() {
  return new Promise((resolveAddress, reject) => {
    backend = spawn(backendBin, [], { cwd: work, env: backendEnv, stdio: ["ignore", "inherit", "pipe"] });
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

export function cleanUp() {
  backend?.kill("SIGTERM");
  if (work) rmSync(work, { recursive: true, force: true });
}

const results = [];

/** Runs one named check; a failure is recorded and the next check still runs. */
export async function check(name, body) {
  try {
    await body();
    results.push([name, true]);
    console.log(`  ok    ${name}`);
  } catch (error) {
    results.push([name, false]);
    console.log(`  FAIL  ${name}: ${error instanceof Error ? error.message : error}`);
  }
}

/** The summary line; true when every check passed. */
export function summary() {
  const failed = results.filter(([, ok]) => !ok).length;
  console.log(`e2e: ${results.length - failed} passed, ${failed} failed`);
  return failed === 0;
}

/** For values a failure may print: names, messages, the e2e's own test value. */
export function assertEqual(actual, expected, what) {
  if (actual !== expected) throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

/** For what must not be printed (the token): the message says what went wrong, not the value. */
export function assert(condition, message) {
  if (!condition) throw new Error(message);
}
