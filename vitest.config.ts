import { defineConfig } from "vitest/config"

// One project per package, plus the examples; each has its own vitest.config.ts.
export default defineConfig({
  test: {
    projects: ["packages/*/vitest.config.ts", "examples/vitest.config.ts"],
    // The summary reporter ends every run with the plain line "N passed, N failed, N skipped".
    reporters: ["default", "./scripts/vitest-summary.mjs"]
  }
})
