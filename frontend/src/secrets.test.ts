import { describe, expect, it } from "vitest";
import { MAX_NAME_LENGTH, MAX_VALUE_BYTES, describeExpiry, nameProblem, valueProblem } from "./secrets";

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
