// `npm run consumer-check`, a step of .ci/run: can an ordinary Node project install and use the packages?
// Builds them, packs each library with `npm pack`, installs the tarballs with their peer dependencies from the registry
// into a new project under the OS temp directory, runs scripts/consumer/main.mjs there with plain `node` (no tsx, no
// export condition; on a database of its own when DATABASE_URL is set) and type-checks scripts/consumer/check.ts with
// `tsc` (module NodeNext, strict) against the packed declarations. Exits non-zero when any check fails.
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { builtinModules } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const fixtures = path.join(root, "scripts", "consumer")
const libraries = ["core", "postgres", "outbox-nats", "cli"]
const tsc = path.join(root, "node_modules", "typescript", "bin", "tsc")
const npm = process.platform === "win32" ? "npm.cmd" : "npm"
const stepTimeoutMs = 180_000

// The new project sees none of the repository: no source condition (vitest's NODE_OPTIONS), and none of the settings
// `npm run` hands its scripts (npm_config_local_prefix would point npm back at the workspace).
const outsideEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) =>
    key !== "NODE_OPTIONS" && key !== "INIT_CWD" && !/^npm_(config_local_prefix|lifecycle_|package_)/i.test(key)
  )
)

const results = []
const started = performance.now()

/** Runs a command; returns its output, or throws with the output when it fails. */
const run = (command, args, options) => {
  const result = spawnSync(command, args, {
    encoding: "utf8",
    timeout: stepTimeoutMs,
    maxBuffer: 64 * 1024 * 1024,
    shell: process.platform === "win32",
    ...options
  })
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`
  if (result.error || result.status !== 0) {
    const why = result.error ? result.error.message : `exit code ${result.status}`
    throw new Error(`${command} ${args.join(" ")}: ${why}\n${output}`)
  }
  return result.stdout ?? ""
}

/** Runs one check, recording ok or failed with its time; later checks that need it are skipped after a failure. */
const check = (name, body) => {
  const start = performance.now()
  try {
    const detail = body()
    results.push({ name, ok: true })
    console.log(`  ok      ${name} (${((performance.now() - start) / 1000).toFixed(1)}s)${detail ? `: ${detail}` : ""}`)
    return true
  } catch (error) {
    results.push({ name, ok: false })
    console.log(`  FAILED  ${name} (${((performance.now() - start) / 1000).toFixed(1)}s)`)
    console.log(String(error instanceof Error ? error.message : error).replace(/^/gm, "          "))
    return false
  }
}

const readJson = (file) => JSON.parse(fs.readFileSync(file, "utf8"))
const packageDir = (name) => path.join(root, "packages", name.replace("@eventfold/", ""))

const temp = fs.mkdtempSync(path.join(os.tmpdir(), "eventfold-consumer-"))
const tarballs = path.join(temp, "tarballs")
const app = path.join(temp, "app")
fs.mkdirSync(tarballs)
fs.mkdirSync(app)
// EVENTFOLD_CONSUMER_KEEP=1 keeps the project for a look after a failure.
const cleanUp = () => process.env.EVENTFOLD_CONSUMER_KEEP === "1" || fs.rmSync(temp, { recursive: true, force: true })
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    cleanUp()
    process.exit(130)
  })
}

console.log(`consumer check in ${temp}`)
try {
  const packed = []
  const ok = check("build: tsc -b tsconfig.build.json", () => {
    run(process.execPath, [tsc, "-b", "tsconfig.build.json"], { cwd: root })
  }) &&
    check("pack: npm pack of each library, with its build, licence and exports", () => {
      const workspaces = libraries.map((name) => `--workspace=packages/${name}`)
      const json = run(npm, ["pack", ...workspaces, "--pack-destination", tarballs, "--json", "--loglevel=error"], {
        cwd: root
      })
      const problems = []
      for (const entry of JSON.parse(json)) {
        const files = new Set(entry.files.map((file) => file.path))
        const manifest = readJson(path.join(packageDir(entry.name), "package.json"))
        const modules = fs.readdirSync(path.join(packageDir(entry.name), "src"))
          .filter((file) => file.endsWith(".ts")).map((file) => file.slice(0, -3))
        for (const required of ["LICENSE", "README.md", "package.json"]) {
          if (!files.has(required)) problems.push(`${entry.name}: ${required} is not packed`)
        }
        for (const module of modules) {
          for (const file of [`dist/${module}.js`, `dist/${module}.d.ts`]) {
            if (!files.has(file)) problems.push(`${entry.name}: ${file} is not packed`)
          }
        }
        for (const file of files) {
          if (/(^|\/)(test|build)\/|\.tsbuildinfo$/.test(file)) problems.push(`${entry.name}: ${file} is packed`)
        }
        // Every package the build imports (JavaScript and declarations) is one the package declares.
        const declared = new Set([
          manifest.name,
          ...Object.keys(manifest.dependencies ?? {}),
          ...Object.keys(manifest.peerDependencies ?? {})
        ])
        for (const file of files) {
          if (!/^dist\/.*\.(js|d\.ts)$/.test(file)) continue
          const text = fs.readFileSync(path.join(packageDir(entry.name), file), "utf8")
          const specifiers = [
            ...text.matchAll(/^(?:import|export)\b[^"';]*?\bfrom\s*"([^"]+)"/gm),
            ...text.matchAll(/^import\s*"([^"]+)"/gm),
            ...text.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g)
          ]
          for (const [, specifier] of specifiers) {
            if (/^(\.|node:)/.test(specifier) || builtinModules.includes(specifier)) continue
            const name = specifier.split("/").slice(0, specifier.startsWith("@") ? 2 : 1).join("/")
            if (!declared.has(name)) problems.push(`${entry.name}: ${file} imports ${name}, which it does not declare`)
          }
        }
        if (manifest.license !== "MIT" || manifest.sideEffects !== false) {
          problems.push(`${entry.name}: license MIT and sideEffects false expected`)
        }
        packed.push({ name: entry.name, version: entry.version, file: path.join(tarballs, entry.filename), manifest })
      }
      if (problems.length > 0) throw new Error(problems.join("\n"))
      return packed.map((p) => `${p.name}@${p.version} ${(fs.statSync(p.file).size / 1024).toFixed(0)} kB`).join(", ")
    }) &&
    check("install: the tarballs and their peer dependencies from the registry, in a new project", () => {
      // The peers a user installs (README, "Installing"): every library's required ones, at the ranges it declares.
      const peers = new Map()
      for (const { manifest } of packed) {
        for (const [name, range] of Object.entries(manifest.peerDependencies ?? {})) {
          if (manifest.peerDependenciesMeta?.[name]?.optional !== true) peers.set(name, range)
        }
      }
      fs.writeFileSync(
        path.join(app, "package.json"),
        JSON.stringify({ name: "eventfold-consumer", version: "1.0.0", private: true, type: "module" }, null, 2)
      )
      run(npm, [
        "install",
        "--no-audit",
        "--no-fund",
        "--prefer-offline",
        "--loglevel=error",
        ...packed.map((p) => p.file),
        ...[...peers].map(([name, range]) => `${name}@${range}`)
      ], { cwd: app, env: outsideEnv })
      const installed = (name) => readJson(path.join(app, "node_modules", name, "package.json")).version
      const copies = findPackages(path.join(app, "node_modules"), "effect")
      if (copies.length !== 1) throw new Error(`expected one copy of effect, found ${copies.join(", ")}`)
      return [...peers.keys()].map((name) => `${name}@${installed(name)}`).join(", ")
    })

  if (ok) {
    check(
      `run: node main.mjs (${process.env.DATABASE_URL ? "memory and PostgreSQL" : "memory; PostgreSQL skipped"})`,
      () => {
        fs.copyFileSync(path.join(fixtures, "main.mjs"), path.join(app, "main.mjs"))
        return run(process.execPath, ["main.mjs"], { cwd: app, env: outsideEnv }).trim().split("\n").join("; ")
      }
    )
    check("types: tsc --noEmit (module NodeNext, strict) against the packed declarations", () => {
      fs.copyFileSync(path.join(fixtures, "check.ts"), path.join(app, "check.ts"))
      fs.writeFileSync(
        path.join(app, "tsconfig.json"),
        JSON.stringify(
          {
            compilerOptions: {
              module: "NodeNext",
              moduleResolution: "NodeNext",
              target: "ES2022",
              lib: ["ES2022"],
              // No @types/node: the declarations need none.
              types: [],
              strict: true,
              exactOptionalPropertyTypes: true,
              noEmit: true,
              // As most applications do; check.ts's @ts-expect-error lines fail if a type degraded to any.
              skipLibCheck: true
            },
            files: ["check.ts"]
          },
          null,
          2
        )
      )
      run(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: app, env: outsideEnv })
    })
    check("bin: the installed eventfold command (--help, --version, a failing status exits 1)", () => {
      const bin = path.join(app, "node_modules", ".bin", "eventfold")
      const help = run(bin, ["--help"], { cwd: app, env: outsideEnv })
      if (!help.includes("EXIT CODES")) throw new Error(`eventfold --help printed no EXIT CODES section:\n${help}`)
      const version = run(bin, ["--version"], { cwd: app, env: outsideEnv }).trim()
      const failing = spawnSync(bin, ["status"], {
        cwd: app,
        encoding: "utf8",
        timeout: stepTimeoutMs,
        env: { ...outsideEnv, DATABASE_URL: "postgres://nobody@127.0.0.1:1/none", EVENTFOLD_PG_CONNECT_TIMEOUT: "2000" }
      })
      if (failing.status !== 1 || !/^error: /m.test(failing.stderr)) {
        throw new Error(`eventfold status on a closed port: exit ${failing.status}\n${failing.stdout}${failing.stderr}`)
      }
      return `eventfold ${version}`
    })
  }
} finally {
  cleanUp()
}

/** The directories of every installed copy of a package under a node_modules tree. */
function findPackages(nodeModules, name) {
  const found = []
  const visit = (dir) => {
    if (!fs.existsSync(dir)) return
    const candidate = path.join(dir, name, "package.json")
    if (fs.existsSync(candidate)) found.push(path.dirname(candidate))
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue
      const scoped = entry.name.startsWith("@")
        ? fs.readdirSync(path.join(dir, entry.name)).map((n) => path.join(dir, entry.name, n))
        : [path.join(dir, entry.name)]
      for (const pkg of scoped) visit(path.join(pkg, "node_modules"))
    }
  }
  visit(nodeModules)
  return found
}

const failed = results.filter((r) => !r.ok).length
console.log(
  `consumer check: ${results.length - failed} passed, ${failed} failed (${
    ((performance.now() - started) / 1000).toFixed(1)
  }s)`
)
process.exitCode = failed > 0 || results.length < 6 ? 1 : 0
