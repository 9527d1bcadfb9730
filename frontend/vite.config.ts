import { readFileSync } from "node:fs";
import { defineConfig } from "vitest/config";

// The release version lives in package.json (kept in step with the rest of the
// repository by `cargo xtask release`) and is baked into the bundle here.
const pkg = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8")) as {
  version: string;
};

export default defineConfig({
  define: {
    __APP_VERSION__: JSON.stringify(pkg.version),
  },
  server: {
    // `npm run dev` talks to a backend started with `make run`.
    proxy: {
      "/api": "http://127.0.0.1:8000",
      "/health": "http://127.0.0.1:8000",
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
  },
});
