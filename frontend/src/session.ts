// The API token of the signed-in browser tab. It lives in sessionStorage, never
// localStorage: it goes when the tab or browser closes, and other tabs do not
// share it. Nothing here logs or displays the token.

/** The sessionStorage key; the e2e and the backend's own tests use it too. */
export const TOKEN_KEY = "secrets.token";

/** What sign-in says after any 401: the token is no longer (or never was) valid. */
export const TOKEN_REJECTED =
  "token rejected: it may have been revoked. Sign in with a valid token (an operator creates one with `backend token create NAME`).";

/** The part of the Web Storage interface the session needs. */
export type TokenStore = Pick<Storage, "getItem" | "setItem" | "removeItem">;

/** The stored token, or null when this tab is signed out. */
export function readToken(store: TokenStore): string | null {
  const token = store.getItem(TOKEN_KEY);
  return token === null || token === "" ? null : token;
}

/**
 * Stands in for sessionStorage when the browser refuses it (Chromium throws on
 * merely reading `sessionStorage` when the user blocks site data): nobody is
 * signed in, and signing in says why it cannot keep the token.
 */
export const NO_STORAGE: TokenStore = {
  getItem: () => null,
  setItem: () => {
    throw new Error("this browser keeps no session data for this page (site data is blocked); allow it for this site");
  },
  removeItem: () => {},
};

export function saveToken(store: TokenStore, token: string): void {
  store.setItem(TOKEN_KEY, token);
}

export function clearToken(store: TokenStore): void {
  store.removeItem(TOKEN_KEY);
}

// RFC 6750's b64token: what may follow "Bearer " in an Authorization header.
// The backend's tokens (`sst_` + base64url) fit it.
const BEARER_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Why `token` cannot be sent, or null when it can. Never quotes the token. */
export function tokenProblem(token: string): string | null {
  if (token.length === 0) return "Paste an API token (an operator creates one with `backend token create NAME`).";
  if (/\s/.test(token)) return "The token contains spaces or line breaks: paste it as one word.";
  if (!BEARER_TOKEN.test(token)) return "That is not a token: tokens use only letters, digits and - . _ ~ + / =.";
  return null;
}

/** The pasted text as the token to send: surrounding whitespace is a copy artefact. */
export function cleanToken(pasted: string): string {
  return pasted.trim();
}

/** The headers of an API request: the bearer token, and JSON for a body. */
export function requestHeaders(token: string | null, hasBody: boolean): Record<string, string> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  if (hasBody) headers["Content-Type"] = "application/json";
  return headers;
}
