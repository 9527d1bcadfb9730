import type { Secret, SecretMeta } from "./secrets";

/** An error answer from the backend, with its message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(path: string, init?: RequestInit): Promise<T> {
  const response = await fetch(path, {
    ...init,
    headers: { "Content-Type": "application/json", ...init?.headers },
  });
  if (response.status === 204) return undefined as T;
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = typeof body.error === "string" ? body.error : `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return body as T;
}

export async function listSecrets(): Promise<SecretMeta[]> {
  const body = await call<{ secrets: SecretMeta[] }>("/api/secrets");
  return body.secrets;
}

export function storeSecret(name: string, value: string, ttlSeconds: number | null): Promise<SecretMeta> {
  const payload = ttlSeconds === null ? { name, value } : { name, value, ttl_seconds: ttlSeconds };
  return call<SecretMeta>("/api/secrets", { method: "POST", body: JSON.stringify(payload) });
}

export function revealSecret(name: string): Promise<Secret> {
  return call<Secret>(`/api/secrets/${encodeURIComponent(name)}`);
}

export function deleteSecret(name: string): Promise<void> {
  return call<void>(`/api/secrets/${encodeURIComponent(name)}`, { method: "DELETE" });
}
