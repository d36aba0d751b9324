/**
 * A decider: the pure heart of an aggregate. `decide` turns a command and the current state into new events (or a
 * domain error); `evolve` folds one event into the state. It knows nothing about storage.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"

/**
 * @since 0.1.0
 * @category models
 */
export interface Decider<in out State, in Command, in out Event, out DomainError = never> {
  readonly initialState: State
  readonly evolve: (state: State, event: Event) => State
  readonly decide: (command: Command, state: State) => Effect.Effect<ReadonlyArray<Event>, DomainError>
}

/**
 * @since 0.1.0
 * @category models
 */
export declare namespace Decider {
  /** @since 0.1.0 */
  export type State<D> = D extends Decider<infer S, infer _C, infer _E, infer _Err> ? S : never
  /** @since 0.1.0 */
  export type Command<D> = D extends Decider<infer _S, infer C, infer _E, infer _Err> ? C : never
  /** @since 0.1.0 */
  export type Event<D> = D extends Decider<infer _S, infer _C, infer E, infer _Err> ? E : never
  /** @since 0.1.0 */
  export type Error<D> = D extends Decider<infer _S, infer _C, infer _E, infer Err> ? Err : never
}

/**
 * Builds a decider; the identity function, there to fix the types.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <State, Command, Event, DomainError = never>(
  decider: Decider<State, Command, Event, DomainError>
): Decider<State, Command, Event, DomainError> => decider

/**
 * Folds events into a state, from the decider's initial state or from `state`.
 *
 * @since 0.1.0
 * @category folding
 */
export const fold = <State, Command, Event, DomainError>(
  decider: Decider<State, Command, Event, DomainError>,
  events: Iterable<Event>,
  state: State = decider.initialState
): State => {
  let current = state
  for (const event of events) current = decider.evolve(current, event)
  return current
}
