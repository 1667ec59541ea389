import { FlowProducer, type Job, Queue, Worker } from 'bullmq';
import type { Logger } from '../logger.js';
import { type JobDefinition, QUEUE_NAMES, type QueueName } from './jobs.js';

export interface QueueSettings {
  redisUrl: string;
  prefix: string;
  /**
   * how long a worker's claim on a job lasts without renewal, and how often stalled jobs are looked for; a killed
   * worker's jobs go to another worker after about twice this; milliseconds; default 30000 (BullMQ's)
   */
  lockMs?: number;
}

/** A job definition with the code that does the work. */
export interface JobHandler<T> {
  definition: JobDefinition<T>;
  /** concurrent jobs of this kind per worker process */
  concurrency: number;
  handle(data: T, job: Job, token: string | undefined): Promise<void>;
}

// biome-ignore lint/suspicious/noExplicitAny: handlers of different payload types share one registry
export type AnyJobHandler = JobHandler<any>;

/** see JobDefinition.priority */
const DEFAULT_PRIORITY = 5;

export interface FlowJob<T> {
  definition: JobDefinition<T>;
  data: T;
}

export interface Queues {
  /** `priority` overrides the definition's (1 = first), e.g. for a decision that must reach Slack at once */
  enqueue<T>(
    definition: JobDefinition<T>,
    data: T,
    opts?: { delayMs?: number; priority?: number },
  ): Promise<void>;
  /** removes a waiting or delayed job (a timer nobody needs any more); false when it is running or gone */
  remove<T>(definition: JobDefinition<T>, data: T): Promise<boolean>;
  /**
   * A parent job that runs once all its children have finished. A child that fails for good does not hold the parent
   * back (`ignoreDependencyOnFailure`): the parent sees what is missing and carries on.
   */
  addFlow<P>(parent: FlowJob<P>, children: FlowJob<unknown>[]): Promise<void>;
  /** waiting + delayed + active jobs per queue, for /metrics */
  depths(): Promise<Record<QueueName, { waiting: number; active: number; delayed: number; failed: number }>>;
  close(): Promise<void>;
}

export function createQueues(settings: QueueSettings): Queues {
  const queues = new Map<QueueName, Queue>();
  for (const name of QUEUE_NAMES) {
    queues.set(
      name,
      new Queue(name, {
        prefix: settings.prefix,
        // Fail fast instead of buffering when Redis is down: the caller has already committed to Postgres,
        // and the reconciler re-enqueues what is missing.
        connection: { url: settings.redisUrl, enableOfflineQueue: false, maxRetriesPerRequest: 1 },
        defaultJobOptions: {
          removeOnComplete: { age: 3600, count: 10_000 },
          removeOnFail: { age: 7 * 86_400 },
        },
      }),
    );
  }
  const queueOf = (name: QueueName): Queue => queues.get(name) as Queue;
  let flows: FlowProducer | null = null;
  const jobOptions = <T>(definition: JobDefinition<T>, payload: T) => ({
    jobId: definition.jobId(payload),
    attempts: definition.attempts,
    backoff: { type: 'exponential', delay: definition.backoffMs },
    removeOnComplete: { age: 3600, count: 10_000 },
    removeOnFail: { age: 7 * 86_400 },
    priority: definition.priority ?? DEFAULT_PRIORITY,
  });
  return {
    async enqueue(definition, data, opts) {
      const payload = definition.payload.parse(data);
      await queueOf(definition.queue).add(definition.name, payload, {
        jobId: definition.jobId(payload),
        attempts: definition.attempts,
        backoff: { type: 'exponential', delay: definition.backoffMs },
        delay: opts?.delayMs,
        priority: opts?.priority ?? definition.priority ?? DEFAULT_PRIORITY,
      });
    },
    async remove(definition, data) {
      const payload = definition.payload.parse(data);
      return (await queueOf(definition.queue).remove(definition.jobId(payload))) === 1;
    },
    async addFlow(parent, children) {
      flows ??= new FlowProducer({
        prefix: settings.prefix,
        connection: { url: settings.redisUrl, enableOfflineQueue: false, maxRetriesPerRequest: 1 },
      });
      const parentData = parent.definition.payload.parse(parent.data);
      await flows.add({
        name: parent.definition.name,
        queueName: parent.definition.queue,
        data: parentData,
        opts: jobOptions(parent.definition, parentData),
        children: children.map((child) => {
          const data = child.definition.payload.parse(child.data);
          return {
            name: child.definition.name,
            queueName: child.definition.queue,
            data,
            opts: { ...jobOptions(child.definition, data), ignoreDependencyOnFailure: true },
          };
        }),
      });
    },
    async depths() {
      const out = {} as Record<
        QueueName,
        { waiting: number; active: number; delayed: number; failed: number }
      >;
      for (const name of QUEUE_NAMES) {
        const counts = await queueOf(name).getJobCounts(
          'waiting',
          'active',
          'delayed',
          'failed',
          'prioritized',
        );
        out[name] = {
          waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
          active: counts.active ?? 0,
          delayed: counts.delayed ?? 0,
          failed: counts.failed ?? 0,
        };
      }
      return out;
    },
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close()));
      await flows?.close();
    },
  };
}

export interface Workers {
  /** stops taking jobs, lets the running ones finish (or hands them back after `graceMs`), closes connections */
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts one BullMQ worker per queue, dispatching by job name. Fails at start-up when a job kind has two handlers,
 * so a job can never be picked up by the wrong code; a job whose name has no handler fails without retries.
 */
export function startWorkers(settings: QueueSettings, handlers: AnyJobHandler[], log: Logger): Workers {
  const byName = new Map<string, AnyJobHandler>();
  for (const handler of handlers) {
    const key = `${handler.definition.queue}/${handler.definition.name}`;
    if (byName.has(key)) throw new Error(`two handlers for job ${key}`);
    byName.set(key, handler);
  }
  const workers: Worker[] = [];
  for (const queue of QUEUE_NAMES) {
    const mine = handlers.filter((h) => h.definition.queue === queue);
    if (mine.length === 0) continue;
    const concurrency = Math.max(...mine.map((h) => h.concurrency));
    const worker = new Worker(
      queue,
      async (job, token) => {
        const handler = byName.get(`${queue}/${job.name}`);
        if (!handler) {
          const { UnrecoverableError } = await import('bullmq');
          throw new UnrecoverableError(`no handler for job ${queue}/${job.name}`);
        }
        const parsed = handler.definition.payload.safeParse(job.data);
        if (!parsed.success) {
          const { UnrecoverableError } = await import('bullmq');
          throw new UnrecoverableError(
            `bad payload for ${job.name}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
          );
        }
        await handler.handle(parsed.data, job, token);
      },
      {
        prefix: settings.prefix,
        connection: { url: settings.redisUrl, maxRetriesPerRequest: null },
        concurrency,
        autorun: true,
        ...(settings.lockMs ? { lockDuration: settings.lockMs, stalledInterval: settings.lockMs } : {}),
      },
    );
    worker.on('failed', (job, err) => {
      if (!job) return;
      const final = err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
      // Logged once, on the last attempt: earlier failures are expected retries.
      if (final)
        log.error({ err, job: job.id, name: job.name, attempts: job.attemptsMade }, 'job failed for good');
      else
        log.debug(
          { job: job.id, name: job.name, attempt: job.attemptsMade, msg: err.message },
          'job failed; will retry',
        );
    });
    worker.on('error', (err) => log.warn({ err, queue }, 'worker error'));
    workers.push(worker);
  }
  return {
    async close(graceMs = 10_000) {
      // close() waits for active jobs; after the grace period force-close hands them back (their lock lapses and
      // another worker retries them).
      let timer: NodeJS.Timeout | undefined;
      const graceful = Promise.all(workers.map((w) => w.close()));
      const forced = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), graceMs);
      });
      const outcome = await Promise.race([graceful.then(() => 'done' as const), forced]);
      if (timer) clearTimeout(timer);
      if (outcome === 'timeout') {
        log.warn('workers did not finish within the grace period; handing their jobs back');
        await Promise.all(workers.map((w) => w.close(true)));
      }
    },
  };
}
