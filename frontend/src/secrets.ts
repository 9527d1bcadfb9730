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

// `Date` alone also parses "2026" or "Jan 2": only a full timestamp with a zone
// is a date the list may reformat.
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * An API timestamp (RFC 3339, `2026-01-02T03:04:05Z`) as the list shows it:
 * `2026-01-02 03:04 UTC`. UTC, whatever the browser's zone, so every reader of
 * the list sees the same date the backend stored; an offset other than `Z` is
 * converted. Text that is not a timestamp is shown as it came.
 */
export function formatUtc(timestamp: string): string {
  const date = new Date(timestamp);
  if (!RFC3339.test(timestamp) || Number.isNaN(date.getTime())) return timestamp;
  const pad = (n: number) => String(n).padStart(2, "0");
  const day = `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}`;
  return `${day} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())} UTC`;
}

/** "created 2026-01-01 00:00 UTC". */
export function describeCreated(secret: SecretMeta): string {
  return `created ${formatUtc(secret.created_at)}`;
}

/** "expires 2026-01-02 03:04 UTC" or "never expires". */
export function describeExpiry(secret: SecretMeta): string {
  if (!secret.expires_at) return "never expires";
  return `expires ${formatUtc(secret.expires_at)}`;
}

/** The question the delete dialog asks, naming the secret. */
export function deleteQuestion(name: string): string {
  return `Delete the secret ${name}? It is gone for every user of this service; this cannot be undone.`;
}
