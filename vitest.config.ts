import { defineConfig } from "vitest/config"

// One project per package, plus the examples; each has its own vitest.config.ts.
export default defineConfig({
  test: {
    projects: ["packages/*/vitest.config.ts", "examples/vitest.config.ts"]
  }
})
