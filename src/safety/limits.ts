import type { Redis } from 'ioredis';

/**
 * The hard limits that span incidents, in Redis windows, checked and reserved in one Lua call right before an action
 * runs (so two workers cannot both take the last slot):
 * - restarts per target inside a sliding window (a restart storm is cut at the limit);
 * - actions per incident;
 * - automated actions in flight across the fleet (a full fleet makes the step wait its turn instead of failing).
 * Postgres keeps the record; if Redis loses these windows the per-incident counts are still checked against it.
 */
export interface LimitRequest {
  /** unique per step execution (the step row id), so a retried reservation is idempotent */
  stepKey: string;
  incidentId: number;
  /** the restart window applies when set */
  restartTarget?: string;
  restartsPerTarget: number;
  restartWindowMs: number;
  actionsPerIncident: number;
  inFlight: number;
  /** how long a reservation of the fleet slot lives if it is never released (a dead worker); milliseconds */
  inFlightTtlMs: number;
}

export type LimitOutcome =
  | { ok: true }
  | { ok: false; limit: 'restarts_per_target' | 'actions_per_incident'; message: string }
  | { ok: false; limit: 'in_flight'; message: string; retryInMs: number };

// KEYS: 1 restart window zset (or ''), 2 incident action set, 3 fleet in-flight zset
// ARGV: now ms, stepKey, restartsMax, windowMs, actionsMax, inFlightMax, inFlightTtlMs
// Returns {code, count}: 0 ok, 1 restarts, 2 actions, 3 in flight
const RESERVE = `
local now = tonumber(ARGV[1])
local step = ARGV[2]
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZSCORE', KEYS[3], step) then return {0, 0} end
if KEYS[1] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[4]))
  if not redis.call('ZSCORE', KEYS[1], step) then
    local restarts = redis.call('ZCARD', KEYS[1])
    if restarts >= tonumber(ARGV[3]) then return {1, restarts} end
  end
end
if redis.call('SISMEMBER', KEYS[2], step) == 0 then
  local actions = redis.call('SCARD', KEYS[2])
  if actions >= tonumber(ARGV[5]) then return {2, actions} end
end
local flying = redis.call('ZCARD', KEYS[3])
if flying >= tonumber(ARGV[6]) then return {3, flying} end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[7]), step)
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[7]))
if KEYS[1] ~= '' then
  redis.call('ZADD', KEYS[1], now, step)
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
end
redis.call('SADD', KEYS[2], step)
redis.call('EXPIRE', KEYS[2], 7 * 86400)
return {0, 0}
`;

export interface Limiter {
  reserve(req: LimitRequest): Promise<LimitOutcome>;
  /** frees the fleet slot (the restart window and incident count keep the reservation) */
  release(stepKey: string): Promise<void>;
}

export function createLimiter(redis: Redis, prefix: string): Limiter {
  const key = (...parts: string[]) => `${prefix}:limits:${parts.join(':')}`;
  const fleet = key('in-flight');
  return {
    async reserve(req) {
      const [code, count] = (await redis.eval(
        RESERVE,
        3,
        req.restartTarget ? key('restarts', req.restartTarget) : '',
        key('incident', String(req.incidentId)),
        fleet,
        Date.now(),
        req.stepKey,
        req.restartsPerTarget,
        req.restartWindowMs,
        req.actionsPerIncident,
        req.inFlight,
        req.inFlightTtlMs,
      )) as [number, number];
      switch (code) {
        case 0:
          return { ok: true };
        case 1:
          return {
            ok: false,
            limit: 'restarts_per_target',
            message: `${req.restartTarget} was already restarted ${count} times in the last ${Math.round(req.restartWindowMs / 60_000)} minutes (limit ${req.restartsPerTarget}): a restart loop is not a fix`,
          };
        case 2:
          return {
            ok: false,
            limit: 'actions_per_incident',
            message: `this incident already had ${count} actions (limit ${req.actionsPerIncident})`,
          };
        default:
          return {
            ok: false,
            limit: 'in_flight',
            message: `${count} automated actions are running across the fleet (limit ${req.inFlight}); waiting for a slot`,
            // spread the waiting steps out so they do not all retry at once
            retryInMs: 2_000 + Math.floor(Math.random() * 3_000),
          };
      }
    },
    async release(stepKey) {
      await redis.zrem(fleet, stepKey);
    },
  };
}
