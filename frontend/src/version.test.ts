import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { APP_VERSION, footerText } from "./version";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));

describe("version", () => {
  it("is the version in package.json, injected by vite.config.ts", () => {
    expect(APP_VERSION).toBe(pkg.version);
  });

  it("shows as v + version in the footer", () => {
    expect(footerText()).toBe(`v${pkg.version}`);
    expect(footerText("0.2.0-beta")).toBe("v0.2.0-beta");
  });
});
