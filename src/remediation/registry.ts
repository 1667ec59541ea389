import type { AnyExecutor } from './executor.js';
import { cancelQueryExecutor } from './executors/cancel-query.js';
import { escalateExecutor } from './executors/escalate.js';
import { flushCacheExecutor } from './executors/flush-cache.js';
import { httpRequestExecutor } from './executors/http-request.js';
import { notifyExecutor } from './executors/notify.js';
import { restartServiceExecutor } from './executors/restart-service.js';
import { rollbackExecutor } from './executors/rollback.js';
import { runScriptExecutor } from './executors/run-script.js';
import { scaleExecutor } from './executors/scale.js';
import { terminateConnectionsExecutor } from './executors/terminate-connections.js';

/** Every remediation action of the catalogue, by name (a test checks the two lists match). */
export const EXECUTORS: ReadonlyMap<string, AnyExecutor> = new Map(
  [
    restartServiceExecutor,
    scaleExecutor,
    rollbackExecutor,
    terminateConnectionsExecutor,
    cancelQueryExecutor,
    flushCacheExecutor,
    httpRequestExecutor,
    runScriptExecutor,
    notifyExecutor,
    escalateExecutor,
  ].map((e: AnyExecutor) => [e.action, e]),
);
