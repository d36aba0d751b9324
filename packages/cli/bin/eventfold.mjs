#!/usr/bin/env node
// The `eventfold` executable. Installed from npm it runs the build (dist/bin.js). In the eventfold repository, where
// the package is a workspace (its real path is not inside node_modules) and tsx is at hand, it runs the TypeScript
// sources with the @eventfold/source condition, so `npx eventfold` needs no build step.
import { spawn } from "node:child_process"
import { existsSync, realpathSync } from "node:fs"
import { dirname, join, sep } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const root = dirname(dirname(realpathSync(fileURLToPath(import.meta.url))))
const source = join(root, "src", "bin.ts")
const built = join(root, "dist", "bin.js")

const tsx = () => {
  try {
    return import.meta.resolve("tsx")
  } catch {
    return undefined
  }
}

const inWorkspace = !root.split(sep).includes("node_modules") && existsSync(source)
const loader = inWorkspace || !existsSync(built) ? tsx() : undefined

if (loader !== undefined && existsSync(source)) {
  const child = spawn(
    process.execPath,
    ["--conditions=@eventfold/source", "--import", loader, source, ...process.argv.slice(2)],
    { stdio: "inherit" }
  )
  // Ctrl-C reaches the child through the terminal's process group; keep this process alive until it exits.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal))
  child.on("exit", (code, signal) => {
    if (signal !== null) process.kill(process.pid, signal)
    else process.exit(code ?? 1)
  })
} else if (existsSync(built)) {
  await import(pathToFileURL(built).href)
} else {
  process.stderr.write(`eventfold: no build at ${built}; run npm run build (or install tsx to run the sources)\n`)
  process.exit(1)
}
