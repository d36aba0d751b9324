// Embeds the numbered migrations/NNNN_*.sql files, migrations/grants.sql (the application role's grants) and
// migrations/row_level_security.sql (opt-in row-level security by tenant) into @eventfold/postgres, so the library
// applies exactly the files DBAs can run with psql. The last two are not migrations: each has an export of its own.
// Run after editing any of them: node scripts/generate-migrations.mjs (a test fails when the two drift apart).
import fs from "node:fs"
import path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const dir = path.join(root, "migrations")
const target = path.join(root, "packages/postgres/src/internal/migrations.ts")

export const render = () => {
  // Only numbered files are migrations; grants.sql and row_level_security.sql are embedded on their own below.
  const files = fs.readdirSync(dir).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort()
  const entries = files.map((file) => {
    const [, id, name] = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file)
    return `  { id: ${Number(id)}, name: ${JSON.stringify(name)}, sql: ${
      JSON.stringify(fs.readFileSync(path.join(dir, file), "utf8"))
    } }`
  })
  return `/** @internal Generated from migrations/*.sql by scripts/generate-migrations.mjs. Do not edit. */\n\n` +
    `/** @internal */\nexport interface MigrationFile {\n  readonly id: number\n  readonly name: string\n  readonly sql: string\n}\n\n` +
    `/** @internal */\nexport const migrations: ReadonlyArray<MigrationFile> = [\n${entries.join(",\n")}\n]\n\n` +
    `/** @internal migrations/grants.sql: the least-privilege application role's grants. */\nexport const grants: string = ${
      JSON.stringify(fs.readFileSync(path.join(dir, "grants.sql"), "utf8"))
    }\n\n` +
    `/** @internal migrations/row_level_security.sql: opt-in row-level security by tenant, not a migration. */\n` +
    `export const rowLevelSecurity: string = ${
      JSON.stringify(fs.readFileSync(path.join(dir, "row_level_security.sql"), "utf8"))
    }\n`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  fs.writeFileSync(target, render())
  console.log(`wrote ${path.relative(root, target)}`)
}
