import { afterEach, describe, expect, it } from "vitest";
import {
  MAX_NAME_LENGTH,
  MAX_VALUE_BYTES,
  deleteQuestion,
  describeCreated,
  describeExpiry,
  formatUtc,
  nameProblem,
  valueProblem,
} from "./secrets";

describe("nameProblem", () => {
  it("accepts the names the backend accepts", () => {
    for (const name of ["db.password", "API_KEY", "a-b_c.d", "x".repeat(MAX_NAME_LENGTH)]) {
      expect(nameProblem(name)).toBeNull();
    }
  });

  it("explains what is wrong with a name the backend would refuse", () => {
    expect(nameProblem("")).toMatch(/name/);
    expect(nameProblem("x".repeat(MAX_NAME_LENGTH + 1))).toMatch(/128/);
    expect(nameProblem("has space")).toMatch(/letters, digits/);
    expect(nameProblem("slash/name")).toMatch(/letters, digits/);
  });
});

describe("valueProblem", () => {
  it("counts bytes, not characters, like the backend", () => {
    expect(valueProblem("é".repeat(MAX_VALUE_BYTES / 2))).toBeNull();
    expect(valueProblem("é".repeat(MAX_VALUE_BYTES / 2 + 1))).toMatch(/64 KiB/);
    expect(valueProblem("")).toMatch(/empty/);
  });
});

describe("describeExpiry", () => {
  it("shows the expiry in UTC to the minute", () => {
    const meta = { name: "a", created_at: "2026-01-01T00:00:00Z", expires_at: "2026-01-02T03:04:05Z" };
    expect(describeExpiry(meta)).toBe("expires 2026-01-02 03:04 UTC");
    expect(describeExpiry({ ...meta, expires_at: null })).toBe("never expires");
  });
});

describe("formatUtc", () => {
  const zone = process.env.TZ;
  afterEach(() => {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  });

  it("shows the API's timestamps in UTC to the minute", () => {
    expect(formatUtc("2026-01-02T03:04:05Z")).toBe("2026-01-02 03:04 UTC");
    expect(formatUtc("2026-12-31T23:59:59.999Z")).toBe("2026-12-31 23:59 UTC");
  });

  it("converts an offset to UTC, across a day boundary", () => {
    expect(formatUtc("2026-01-02T01:30:00+02:00")).toBe("2026-01-01 23:30 UTC");
  });

  it("gives the same text whatever the browser's time zone", () => {
    process.env.TZ = "Pacific/Kiritimati";
    expect(formatUtc("2026-01-02T03:04:05Z")).toBe("2026-01-02 03:04 UTC");
    process.env.TZ = "America/Los_Angeles";
    expect(formatUtc("2026-01-02T03:04:05Z")).toBe("2026-01-02 03:04 UTC");
  });

  it("shows text that is not a full timestamp as it came", () => {
    for (const text of ["", "2026", "Jan 2 2026", "2026-01-02", "2026-01-02T03:04:05", "soon"]) {
      expect(formatUtc(text)).toBe(text);
    }
  });
});

describe("describeCreated", () => {
  it("shows the creation date in UTC", () => {
    const meta = { name: "a", created_at: "2026-01-01T00:00:59Z", expires_at: null };
    expect(describeCreated(meta)).toBe("created 2026-01-01 00:00 UTC");
  });
});

describe("deleteQuestion", () => {
  it("names the secret and says it cannot be undone", () => {
    expect(deleteQuestion("db.password")).toMatch(/^Delete the secret db\.password\?/);
    expect(deleteQuestion("db.password")).toMatch(/cannot be undone/);
  });
});
