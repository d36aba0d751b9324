/**
 * pgbench as the ceiling for 1-event appends: one statement per transaction, a single-row INSERT into an events table
 * like eventfold's (the same schema, migrated by `PgMigrations`, in a database of its own), with no stream row, no
 * version check and no client library. `pgbench -n -c <clients> -j <threads> -T <seconds> -f <script>`.
 *
 * @since 0.5.0
 */
import * as PgDatabase from "@eventfold/postgres/PgDatabase"
import * as PgMigrations from "@eventfold/postgres/PgMigrations"
import * as Effect from "effect/Effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import pg from "pg"
import * as domain from "./domain.js"

/**
 * The script pgbench runs: one INSERT of one event into a new stream (random ids, so no two rows collide).
 *
 * @since 0.5.0
 * @category script
 */
export const script = (): string =>
  "INSERT INTO eventfold.events (tenant_id, stream_type, stream_id, version, event_id, event_type, payload, " +
  `metadata, correlation_id) VALUES (${pg.escapeLiteral(domain.TENANT)}, ${pg.escapeLiteral(domain.STREAM_TYPE)}, ` +
  "gen_random_uuid()::text, 1, gen_random_uuid(), 'Deposited', " +
  `${pg.escapeLiteral(JSON.stringify(domain.payloadOf(0)))}::jsonb, ` +
  `${pg.escapeLiteral(JSON.stringify(domain.metadata))}::jsonb, ${pg.escapeLiteral(domain.metadata.correlationId)});\n`

/**
 * A pgbench set up on its database: `run` measures transactions per second with `clients` connections.
 *
 * @since 0.5.0
 * @category models
 */
export interface PgBench {
  readonly run: (clients: number, seconds: number) => Promise<number>
  readonly close: () => void
}

/** Whether a `pgbench` is on the PATH. */
const installed = (): Promise<boolean> =>
  new Promise((resolve) => execFile("pgbench", ["--version"], (error) => resolve(error === null)))

/**
 * Migrates eventfold's schema into the database and writes the script to a temporary file; undefined when no
 * `pgbench` is installed (Debian: `postgresql-client`), and the comparison goes on without its ceiling.
 *
 * @since 0.5.0
 * @category constructors
 */
export const make = async (databaseUrl: string): Promise<PgBench | undefined> => {
  if (!(await installed())) return undefined
  await Effect.runPromise(
    PgMigrations.run().pipe(Effect.provide(PgDatabase.layer({ url: databaseUrl, maxConnections: 1 })))
  )
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "eventfold-pgbench-"))
  const file = path.join(dir, "append.sql")
  fs.writeFileSync(file, script())
  return {
    run: (clients, seconds) =>
      new Promise((resolve, reject) => {
        const args = [
          "-n",
          "-c",
          `${clients}`,
          "-j",
          `${Math.min(clients, 2)}`,
          "-T",
          `${seconds}`,
          "-f",
          file,
          databaseUrl
        ]
        execFile("pgbench", args, { timeout: (seconds + 30) * 1000 }, (error, stdout, stderr) => {
          if (error) return reject(new Error(`pgbench failed: ${error.message}\n${stderr}`))
          const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)
          if (!tps) return reject(new Error(`pgbench: no tps in its output:\n${stdout}`))
          resolve(Number(tps[1]))
        })
      }),
    close: () => fs.rmSync(dir, { recursive: true, force: true })
  }
}
