// CommandHandler on PostgreSQL: the shared contract (event ids; idempotency keys, with 16 concurrent repeats going
// through the pool and the stream's append lock).
import { CommandHandlerContract } from "@eventfold/core/testing"
import { PgTest } from "@eventfold/postgres"

CommandHandlerContract.suite(`postgres (${PgTest.serverLabel()})`, PgTest.layerEventStore())
