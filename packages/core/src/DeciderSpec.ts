/**
 * Given-when-then tests for deciders, pure and with no store:
 * `DeciderSpec.for(decider).given(events).when(command).then(expectedEvents)`.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Decider from "./Decider.js"

/**
 * A decider specification did not hold.
 *
 * @since 0.1.0
 * @category errors
 */
export class DeciderSpecFailure extends Data.TaggedError("DeciderSpecFailure")<{
  readonly message: string
  readonly expected: unknown
  readonly actual: unknown
}> {}

/**
 * The outcome assertions of one `given(...).when(...)` case. Each returns an Effect that fails with
 * `DeciderSpecFailure` when the decider does not behave as stated.
 *
 * @since 0.1.0
 * @category models
 */
export interface Then<State, Event, DomainError> {
  /** The command produces exactly these events, in order. */
  readonly then: (expected: ReadonlyArray<Event>) => Effect.Effect<void, DeciderSpecFailure>
  /** The command fails; with an argument, with an error equal to it or satisfying the predicate. */
  readonly thenFails: (
    expected?: DomainError | ((error: DomainError) => boolean)
  ) => Effect.Effect<void, DeciderSpecFailure>
  /** The command succeeds and produces no event. */
  readonly thenNothingHappens: () => Effect.Effect<void, DeciderSpecFailure>
  /** The command succeeds and the state after folding its events equals this one. */
  readonly thenState: (expected: State) => Effect.Effect<void, DeciderSpecFailure>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Given<State, Command, Event, DomainError> {
  readonly when: (command: Command) => Then<State, Event, DomainError>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Spec<State, Command, Event, DomainError> {
  readonly given: (events: ReadonlyArray<Event>) => Given<State, Command, Event, DomainError>
}

/** Structural equality: Effect's `Equal`, then plain objects, arrays, dates and primitives field by field. */
const deepEquals = (a: unknown, b: unknown): boolean => {
  if (Equal.equals(a, b)) return true
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime()
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  const ra = a as Record<string, unknown>
  const rb = b as Record<string, unknown>
  return ka.length === kb.length && ka.every((k) => k in rb && deepEquals(ra[k], rb[k]))
}

const show = (u: unknown): string => {
  try {
    return JSON.stringify(u, (_, v) => (typeof v === "bigint" ? `${v}n` : v), 2)
  } catch {
    return String(u)
  }
}

const forDecider = <State, Command, Event, DomainError>(
  decider: Decider.Decider<State, Command, Event, DomainError>
): Spec<State, Command, Event, DomainError> => ({
  given: (given) => ({
    when: (command) => {
      const run = Effect.suspend(() => decider.decide(command, Decider.fold(decider, given))).pipe(Effect.exit)
      const fail = (message: string, expected: unknown, actual: unknown) =>
        Effect.fail(
          new DeciderSpecFailure({
            message: `${message}\nexpected: ${show(expected)}\nactual:   ${show(actual)}`,
            expected,
            actual
          })
        )
      const succeeded = Effect.flatMap(run, (exit) =>
        Exit.match(exit, {
          onFailure: (cause) =>
            Option.match(Cause.failureOption(cause), {
              onNone: () => Effect.die(Cause.squash(cause)),
              onSome: (error) => fail("decide failed where success was expected", "success", error)
            }),
          onSuccess: Effect.succeed
        }))
      return {
        then: (expected) =>
          Effect.flatMap(
            succeeded,
            (actual) =>
              actual.length === expected.length && actual.every((e, i) => deepEquals(e, expected[i]))
                ? Effect.void
                : fail("decide produced other events", expected, actual)
          ),
        thenNothingHappens: () =>
          Effect.flatMap(
            succeeded,
            (actual) =>
              actual.length === 0 ? Effect.void : fail("decide produced events where none were expected", [], actual)
          ),
        thenState: (expected) =>
          Effect.flatMap(succeeded, (actual) => {
            const state = Decider.fold(decider, actual, Decider.fold(decider, given))
            return deepEquals(state, expected) ? Effect.void : fail("the resulting state differs", expected, state)
          }),
        thenFails: (expected) =>
          Effect.flatMap(run, (exit) => {
            if (Exit.isSuccess(exit)) {
              return fail("decide succeeded where a failure was expected", expected ?? "a failure", exit.value)
            }
            const error = Cause.failureOption(exit.cause)
            if (Option.isNone(error)) {
              return Effect.die(Cause.squash(exit.cause))
            }
            if (expected === undefined) return Effect.void
            const ok = Predicate.isFunction(expected)
              ? (expected as (error: DomainError) => boolean)(error.value)
              : deepEquals(error.value, expected)
            return ok ? Effect.void : fail("decide failed with another error", expected, error.value)
          })
      }
    }
  })
})

export {
  /**
   * Starts a specification for a decider.
   *
   * @since 0.1.0
   * @category constructors
   */
  forDecider as for
}
