import { mergeConfig } from "vitest/config"
import shared from "../vitest.shared.js"

export default mergeConfig(shared, {
  test: {
    // One embedded PostgreSQL for the run when no DATABASE_URL is given, as for @eventfold/postgres.
    globalSetup: ["../packages/postgres/test/globalSetup.ts"]
  }
})
