/**
 * @eventfold/cli: the `eventfold` operator command and its web console, over the `Admin` service.
 *
 * @since 0.4.0
 */

/** @since 0.4.0 */
export * as Admin from "./Admin.js"

/** @since 0.4.0 */
export * as Cli from "./Cli.js"

/** @since 0.4.0 */
export * as Console from "./Console.js"
