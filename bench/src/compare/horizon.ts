/**
 * The xmin horizon is cluster-wide: a transaction that has been writing for a while anywhere on the server (another
 * database included) hides every event committed after it started from the feed readers and consumers of eventfold
 * and Emmett alike. Before such a workload the coordinator waits for the horizon to be recent, watches it while the
 * workload runs, and says when it had to wait or the horizon was held.
 *
 * @since 0.5.0
 */
import pg from "pg"

/**
 * A transaction that has held a transaction id for a while.
 *
 * @since 0.5.0
 * @category models
 */
export interface OldWriter {
  readonly database: string
  readonly application: string
  readonly ageMs: number
}

const describe = (writer: OldWriter) =>
  `a ${(writer.ageMs / 1000).toFixed(0)} s transaction in database ${writer.database} (${
    writer.application || "no application name"
  })`

const withClient = async <A>(serverUrl: string, f: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 5_000 })
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end()
  }
}

/**
 * The oldest transaction with a transaction id on the server, when it is older than `olderThanMs`.
 *
 * @since 0.5.0
 * @category horizon
 */
export const oldWriter = async (client: pg.Client, olderThanMs: number): Promise<OldWriter | undefined> => {
  const { rows } = await client.query<{ datname: string | null; application_name: string | null; age_ms: number }>(
    `SELECT datname, application_name, extract(epoch FROM now() - xact_start) * 1000 AS age_ms
       FROM pg_stat_activity
      WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
        AND now() - xact_start > make_interval(secs => $1::double precision / 1000)
      ORDER BY xact_start LIMIT 1`,
    [olderThanMs]
  )
  const row = rows[0]
  return row
    ? { database: row.datname ?? "?", application: row.application_name ?? "", ageMs: Number(row.age_ms) }
    : undefined
}

/**
 * Waits (up to `timeoutMs`) until no transaction on the server has held a transaction id for more than `maxAgeMs`.
 * Returns how long it waited and what for, or undefined when the horizon was recent at once.
 *
 * @since 0.5.0
 * @category horizon
 */
export const waitForRecentHorizon = (
  serverUrl: string,
  options: { readonly maxAgeMs: number; readonly timeoutMs: number }
): Promise<string | undefined> =>
  withClient(serverUrl, async (client) => {
    const started = performance.now()
    let last: OldWriter | undefined
    for (;;) {
      const writer = await oldWriter(client, options.maxAgeMs)
      const waited = `${((performance.now() - started) / 1000).toFixed(1)} s`
      if (!writer) return last === undefined ? undefined : `waited ${waited} for ${describe(last)}`
      last = writer
      if (performance.now() - started > options.timeoutMs) {
        return `gave up after ${waited} waiting for ${describe(writer)}`
      }
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
  })

/**
 * Waits (up to `timeoutMs`) until every transaction running now has ended, so that what was committed before this
 * call is below the xmin horizon and visible to feed readers. Returns how long it waited, or undefined at once.
 *
 * @since 0.5.0
 * @category horizon
 */
export const waitPastNow = (serverUrl: string, timeoutMs: number): Promise<string | undefined> =>
  withClient(serverUrl, async (client) => {
    const started = performance.now()
    const { rows } = await client.query<{ now: string }>("SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS now")
    const now = rows[0]!.now
    for (;;) {
      const { rows: past } = await client.query<{ past: boolean; writer: string | null }>(
        `SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::xid8 AS past,
                (SELECT datname || ' (' || coalesce(application_name, '') || ')' FROM pg_stat_activity
                  WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() ORDER BY xact_start LIMIT 1) AS writer`,
        [now]
      )
      const waited = `${((performance.now() - started) / 1000).toFixed(1)} s`
      if (past[0]?.past) return performance.now() - started < 50 ? undefined : `waited ${waited}`
      if (performance.now() - started > timeoutMs) {
        return `gave up after ${waited} waiting for a transaction in ${past[0]?.writer ?? "?"}`
      }
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  })

/**
 * Watches the horizon while `f` runs (every 250 ms): returns `f`'s result and, when some transaction elsewhere held a
 * transaction id for more than `maxAgeMs` meanwhile, the oldest one seen.
 *
 * @since 0.5.0
 * @category horizon
 */
export const watched = <A>(
  serverUrl: string,
  maxAgeMs: number,
  f: () => Promise<A>
): Promise<{ readonly value: A; readonly held: string | undefined }> =>
  withClient(serverUrl, async (client) => {
    let oldest: OldWriter | undefined
    let running = true
    const poll = (async () => {
      while (running) {
        const writer = await oldWriter(client, maxAgeMs)
        if (writer && (!oldest || writer.ageMs > oldest.ageMs)) oldest = writer
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
    })()
    try {
      const value = await f()
      return { value, held: oldest && describe(oldest) }
    } finally {
      running = false
      await poll
    }
  })
