// The single list of test projects (the design card names this file). vitest.config.ts imports it, so vitest 3.2
// runs it through `test.projects` without the deprecation warning a workspace file alone would print.
export default ["packages/*/vitest.config.ts", "examples/vitest.config.ts"]
