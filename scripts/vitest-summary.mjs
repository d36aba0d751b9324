// A vitest reporter that ends the run with one plain, machine-readable line: "N passed, N failed, N skipped".
// A file that failed to load, or an error outside any test, counts as a failure.
export default class SummaryReporter {
  onFinished(files = [], errors = []) {
    let passed = 0
    let failed = 0
    let skipped = 0
    const walk = (task) => {
      if (task.type === "test") {
        const state = task.result?.state
        if (state === "pass") passed++
        else if (state === "fail") failed++
        else skipped++
        return
      }
      for (const child of task.tasks ?? []) walk(child)
    }
    for (const file of files) {
      walk(file)
      if (file.result?.state === "fail" && (file.tasks ?? []).every((t) => t.result?.state !== "fail")) failed++
    }
    failed += errors.length
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`)
  }
}
