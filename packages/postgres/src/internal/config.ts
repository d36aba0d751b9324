/** @internal `Config` helpers shared by the PostgreSQL Layers' `layerConfig`s. */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"

const MILLIS = /^\d+(?:\.\d+)?$/

/**
 * @internal Parses a duration written in Effect's syntax ("5 seconds", "250 millis") or as a plain number of
 * milliseconds ("5000"); finite and not negative.
 */
export const parseDuration = (text: string): Either.Either<Duration.Duration, string> => {
  const trimmed = text.trim()
  const decoded = MILLIS.test(trimmed) ? Option.some(Duration.millis(Number(trimmed))) : Duration.decodeUnknown(trimmed)
  return Option.isSome(decoded) && Duration.isFinite(decoded.value)
    ? Either.right(decoded.value)
    : Either.left(
      `Expected a duration such as "5 seconds" or a number of milliseconds such as "5000", got ${JSON.stringify(text)}`
    )
}

/** @internal A duration setting that accepts both "5 seconds" and "5000" (milliseconds). */
export const duration = (name: string): Config.Config<Duration.Duration> =>
  Config.string().pipe(
    Config.mapOrFail((text) => Either.mapLeft(parseDuration(text), (reason) => ConfigError.InvalidData([], reason))),
    Config.nested(name)
  )

/** @internal A whole number of at least `min`. */
export const integerAtLeast = (name: string, min: number): Config.Config<number> =>
  Config.integer().pipe(
    Config.mapOrFail((n) =>
      n >= min
        ? Either.right(n)
        : Either.left(ConfigError.InvalidData([], `Expected an integer of at least ${min}, got ${n}`))
    ),
    Config.nested(name)
  )

/** @internal An optional setting: `undefined` when the variable is absent, a ConfigError when it is malformed. */
export const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)
