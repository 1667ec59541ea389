import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';

/** Small pieces every bench needs: a seeded PRNG, a free loopback port, a pause. */

/** mulberry32: a small seeded PRNG, so two runs with one seed send the same load */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** A port nothing listens on right now (on 127.0.0.1). */
export async function findFreePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const PINO_LEVELS: Record<number, string> = { 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** What a bench keeps of a bot child's output: log lines counted by level and message, and the last few lines. */
export interface ChildLog {
  logCounts: Map<string, number>;
  lastLines: string[];
  /** when present, the first ERROR_LINES_KEPT lines logged at level error or fatal, whole (what failed, and why) */
  errorLines?: string[];
}

const ERROR_LINES_KEPT = 5;
/** pino's level number of `error` */
const PINO_ERROR = 50;

/**
 * Reads a child's stdout and stderr line by line into `log`: the last 20 lines, and a count per pino level and message
 * (a line that is not pino JSON, such as a stack trace, counts as "unparsed output"); `echo` also writes each line.
 */
export function followChildLog(
  child: { stdout: NodeJS.ReadableStream | null; stderr: NodeJS.ReadableStream | null },
  log: ChildLog,
  echo?: (line: string) => void,
): void {
  const onLine = (line: string) => {
    if (!line.trim()) return;
    log.lastLines.push(line);
    if (log.lastLines.length > 20) log.lastLines.shift();
    echo?.(line);
    let key = 'unparsed output';
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string };
      key = `${PINO_LEVELS[entry.level ?? 0] ?? String(entry.level)} ${entry.msg ?? ''}`;
      if ((entry.level ?? 0) >= PINO_ERROR && log.errorLines && log.errorLines.length < ERROR_LINES_KEPT) {
        log.errorLines.push(line);
      }
    } catch {
      // not a pino line (a stack trace on stderr): counted as is
    }
    log.logCounts.set(key, (log.logCounts.get(key) ?? 0) + 1);
  };
  for (const stream of [child.stdout, child.stderr]) {
    let buffered = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string | Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    });
  }
}
