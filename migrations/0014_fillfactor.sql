-- eventfold 0014: fillfactor on events (95) and streams (90). VACUUM records the few bytes left free at the end of
-- every full page; an event smaller than the history's average then fits there, and the append dirties an old page:
-- a buffer miss and a full-page image in the WAL (up to 8 KB) after each checkpoint. Measured at 1M events after a
-- VACUUM (bench/src/scale.bench.ts): 9.1 KB of WAL and 1.06 buffer misses per append with the default fillfactor,
-- 1.3 KB and 0.11 with 95, for about 4 % more table. New stream rows in streams meet the same, and the free space
-- leaves room for HOT updates of a stream's version. Metadata only: it applies to pages written from now on, takes a
-- SHARE UPDATE EXCLUSIVE lock (appends and reads go on), and rewrites nothing.
-- Apply with psql:  psql "$DATABASE_URL" -v schema=eventfold -f migrations/0014_fillfactor.sql
-- The library applies the same text through PgMigrations, substituting :"schema" (psql's quoted-identifier form).
\if :{?schema}
\else
\set schema eventfold
\endif

CREATE SCHEMA IF NOT EXISTS :"schema";
SET search_path TO :"schema", pg_catalog;

ALTER TABLE events SET (fillfactor = 95);
ALTER TABLE streams SET (fillfactor = 90);
