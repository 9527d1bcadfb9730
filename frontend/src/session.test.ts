import { readFileSync, readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  NO_STORAGE,
  TOKEN_KEY,
  TOKEN_REJECTED,
  cleanToken,
  clearToken,
  readToken,
  requestHeaders,
  saveToken,
  tokenProblem,
  type TokenStore,
} from "./session";

/** A Web Storage that lives in memory, as sessionStorage does for one tab. */
class MemoryStore implements TokenStore {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

// The shape `backend token create` prints: sst_ + 32 bytes in base64url, no padding.
const TOKEN = "sst_q1Z0yN8r-Jx_3mWk9aPvT2bLcE7dHfGs5uIoR4nYw6A";

describe("token storage", () => {
  it("keeps the token under secrets.token until sign-out clears it", () => {
    const store = new MemoryStore();
    expect(readToken(store)).toBeNull();
    saveToken(store, TOKEN);
    expect(store.items.get("secrets.token")).toBe(TOKEN);
    expect(TOKEN_KEY).toBe("secrets.token");
    expect(readToken(store)).toBe(TOKEN);
    clearToken(store);
    expect(readToken(store)).toBeNull();
    expect(store.items.size).toBe(0);
  });

  it("treats an empty stored value as signed out", () => {
    const store = new MemoryStore();
    store.setItem(TOKEN_KEY, "");
    expect(readToken(store)).toBeNull();
  });

  it("without browser storage, nobody is signed in and saving says why", () => {
    expect(readToken(NO_STORAGE)).toBeNull();
    expect(() => saveToken(NO_STORAGE, TOKEN)).toThrow(/site data is blocked/);
    expect(() => clearToken(NO_STORAGE)).not.toThrow();
  });

  it("the UI code never touches localStorage and never logs", () => {
    const sources = readdirSync(new URL(".", import.meta.url)).filter(
      (file) => file.endsWith(".ts") && !file.endsWith(".test.ts"),
    );
    expect(sources).toContain("main.ts");
    for (const file of sources) {
      const text = readFileSync(new URL(file, import.meta.url), "utf8");
      // Uses, not mentions: a comment may say "never localStorage".
      expect(text, file).not.toMatch(/\blocalStorage\s*[.[]/);
      expect(text, file).not.toMatch(/\bconsole\s*\./);
    }
  });
});

describe("tokenProblem", () => {
  it("accepts the tokens the backend prints", () => {
    expect(tokenProblem(TOKEN)).toBeNull();
  });

  it("refuses what cannot follow Bearer, without quoting the token", () => {
    expect(tokenProblem("")).toMatch(/backend token create/);
    expect(tokenProblem("sst_abc def")).toMatch(/spaces or line breaks/);
    expect(tokenProblem("sst_abc\ndef")).toMatch(/spaces or line breaks/);
    const bad = "sst_abc:def";
    expect(tokenProblem(bad)).toMatch(/not a token/);
    expect(tokenProblem(bad)).not.toContain(bad);
  });

  it("trims what a paste adds around the token", () => {
    expect(cleanToken(`  ${TOKEN}\n`)).toBe(TOKEN);
  });
});

describe("requestHeaders", () => {
  it("sends the token as a bearer token on every call", () => {
    expect(requestHeaders(TOKEN, false)).toEqual({ Authorization: `Bearer ${TOKEN}` });
  });

  it("declares JSON only when there is a body", () => {
    expect(requestHeaders(TOKEN, true)).toEqual({
      Authorization: `Bearer ${TOKEN}`,
      "Content-Type": "application/json",
    });
  });

  it("sends no Authorization header without a token", () => {
    expect(requestHeaders(null, false)).toEqual({});
  });
});

describe("TOKEN_REJECTED", () => {
  it("says the token was rejected and how to get one", () => {
    expect(TOKEN_REJECTED).toMatch(/^token rejected: it may have been revoked/);
    expect(TOKEN_REJECTED).toMatch(/backend token create NAME/);
  });
});
