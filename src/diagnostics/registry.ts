import type { AnyCollector } from './collector.js';
import { databaseQueryCollector } from './collectors/database-query.js';
import { httpCheckCollector } from './collectors/http-check.js';
import { logSearchCollector } from './collectors/log-search.js';
import { prometheusQueryCollector } from './collectors/prometheus-query.js';
import { recentDeploysCollector } from './collectors/recent-deploys.js';
import { redisInfoCollector } from './collectors/redis-info.js';
import { shellCommandCollector } from './collectors/shell-command.js';

/** Every diagnostic type a runbook may use, by name. */
export const COLLECTORS: ReadonlyMap<string, AnyCollector> = new Map(
  [
    prometheusQueryCollector,
    httpCheckCollector,
    databaseQueryCollector,
    redisInfoCollector,
    shellCommandCollector,
    logSearchCollector,
    recentDeploysCollector,
  ].map((c: AnyCollector) => [c.type, c]),
);
