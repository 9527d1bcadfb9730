// Rules and formatting shared by the form and the list; the backend enforces
// the same rules, these only give faster feedback.

export const MAX_NAME_LENGTH = 128;
export const MAX_VALUE_BYTES = 64 * 1024;

export interface SecretMeta {
  name: string;
  created_at: string;
  expires_at: string | null;
}

export interface Secret extends SecretMeta {
  value: string;
}

/** Why `name` is not acceptable, or null when it is. */
export function nameProblem(name: string): string | null {
  if (name.length === 0) return "Give the secret a name.";
  if (name.length > MAX_NAME_LENGTH) return `Names are at most ${MAX_NAME_LENGTH} characters.`;
  if (!/^[A-Za-z0-9._-]+$/.test(name)) return "Names may use letters, digits, '.', '_' and '-'.";
  return null;
}

/** Why `value` is not acceptable, or null when it is. */
export function valueProblem(value: string): string | null {
  if (value.length === 0) return "The value is empty.";
  if (new TextEncoder().encode(value).length > MAX_VALUE_BYTES) return "Values are at most 64 KiB.";
  return null;
}

/** "expires 2026-01-02 03:04 UTC" or "never expires". */
export function describeExpiry(secret: SecretMeta): string {
  if (!secret.expires_at) return "never expires";
  return `expires ${secret.expires_at.replace("T", " ").replace(/:\d\dZ$/, " UTC")}`;
}
