import { defineConfig } from "vitest/config"
import projects from "./vitest.workspace.js"

// One project per package, plus the examples; each has its own vitest.config.ts.
export default defineConfig({
  test: {
    projects,
    // The summary reporter ends every run with the plain line "N passed, N failed, N skipped".
    reporters: ["default", "./scripts/vitest-summary.mjs"]
  }
})
