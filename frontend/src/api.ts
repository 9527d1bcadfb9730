import type { Secret, SecretMeta } from "./secrets";
import { requestHeaders } from "./session";

/** An error answer from the backend, with its message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** True when the backend refused the token (missing, unknown or revoked). */
export function isUnauthorized(error: unknown): boolean {
  return error instanceof ApiError && error.status === 401;
}

// Every call carries the token it is given; the caller decides where it comes
// from (the session, or the sign-in form for the check before it is saved).
async function call<T>(token: string, path: string, init: RequestInit = {}): Promise<T> {
  const response = await fetch(path, {
    ...init,
    headers: requestHeaders(token, init.body !== undefined),
  });
  if (response.status === 204) return undefined as T;
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = typeof body.error === "string" ? body.error : `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return body as T;
}

export async function listSecrets(token: string): Promise<SecretMeta[]> {
  const body = await call<{ secrets: SecretMeta[] }>(token, "/api/secrets");
  return body.secrets;
}

export function storeSecret(
  token: string,
  name: string,
  value: string,
  ttlSeconds: number | null,
): Promise<SecretMeta> {
  const payload = ttlSeconds === null ? { name, value } : { name, value, ttl_seconds: ttlSeconds };
  return call<SecretMeta>(token, "/api/secrets", { method: "POST", body: JSON.stringify(payload) });
}

export function revealSecret(token: string, name: string): Promise<Secret> {
  return call<Secret>(token, `/api/secrets/${encodeURIComponent(name)}`);
}

export function deleteSecret(token: string, name: string): Promise<void> {
  return call<void>(token, `/api/secrets/${encodeURIComponent(name)}`, { method: "DELETE" });
}
