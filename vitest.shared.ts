import { defineConfig } from "vitest/config"

// In the repository the packages run from their TypeScript sources: the `@eventfold/source` export condition points
// each `@eventfold/*` import at `src/*.ts` instead of the built `dist/` that published packages use.
const sourceCondition = "@eventfold/source"

export default defineConfig({
  resolve: { conditions: [sourceCondition] },
  ssr: { resolve: { conditions: [sourceCondition] } },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    sequence: { concurrent: false },
    // Node processes the tests start (`node --import tsx fixture.ts`) inherit the condition too.
    env: { NODE_OPTIONS: [process.env.NODE_OPTIONS, `--conditions=${sourceCondition}`].filter(Boolean).join(" ") }
  }
})
