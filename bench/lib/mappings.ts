/**
 * A process's private memory mapping by mapping, from /proc/<pid>/smaps: where native memory that grows outside the
 * JavaScript heap lives (glibc's main arena in `[heap]`, its other arenas in 64 MiB reservations, V8's pages and code,
 * thread stacks, large mallocs mapped on their own). For a diagnosis run of the soak (`--mappings FILE`).
 */
import { readFileSync } from 'node:fs';

/** one mapping holding private memory: start address (hex), size and private memory (Anonymous) in kB, perms, name */
export type Mapping = [start: string, sizeKb: number, anonKb: number, perms: string, name: string];

export interface MappingsSample {
  /** threads of the process (/proc/<pid>/status) */
  threads: number;
  maps: Mapping[];
}

/** glibc's HEAP_MAX_SIZE on 64-bit: each arena other than the main one reserves this much; kB */
const ARENA_KB = 64 * 1024;

/** Reads the mappings of `pid` that hold private (anonymous) memory; null when the process is gone. */
export function readMappings(pid: number | undefined): MappingsSample | null {
  if (pid === undefined) return null;
  let smaps: string;
  let status: string;
  try {
    smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const maps: (Mapping & { end: bigint })[] = [];
  let current: (typeof maps)[number] | null = null;
  for (const line of smaps.split('\n')) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      const [, start = '0', end = '0', perms = '', name = ''] = header;
      const size = Number((BigInt(`0x${end}`) - BigInt(`0x${start}`)) / 1024n);
      current = Object.assign([start, size, 0, perms, name.trim()] as Mapping, { end: BigInt(`0x${end}`) });
      maps.push(current);
      continue;
    }
    const anon = /^Anonymous:\s+(\d+) kB/.exec(line);
    if (anon && current) current[2] = Number(anon[1]);
  }
  // glibc's arenas other than the main one: a 64 MiB reservation, its used head read-write, the rest ---p
  maps.forEach((m, i) => {
    const next = maps[i + 1];
    if (
      !m[4] &&
      m[3].startsWith('rw') &&
      next &&
      !next[4] &&
      next[3].startsWith('---') &&
      BigInt(`0x${next[0]}`) === m.end &&
      m[1] + next[1] === ARENA_KB
    ) {
      m[4] = '[malloc arena]';
    }
  });
  return {
    threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? Number.NaN),
    maps: maps
      .filter((m) => m[2] > 0)
      .map(([start, size, anon, perms, name]) => [start, size, anon, perms, name]),
  };
}

/**
 * What kind of memory a mapping is, as far as its shape tells: `[heap]` is glibc's main arena (brk), `[stack]` the
 * main thread's stack, a named file a library or the binary (private pages written: relocations, data); anonymous
 * reservations of exactly 64 MiB (the used head read-write, the rest ---p) are glibc's other arenas, 8 MiB ones a
 * thread's stack, multiples of 256 KiB mostly V8's heap pages and code (and large mallocs mapped on their own); the
 * rest are large mallocs, zlib's and ICU's buffers, and the like.
 */
export function mappingClass(m: Mapping): string {
  const [, sizeKb, , , name] = m;
  if (name === '[heap]') return 'brk heap (malloc main arena)';
  if (name === '[stack]') return 'main stack';
  if (name === '[malloc arena]') return 'malloc arenas (other threads)';
  if (name.startsWith('/')) return 'file-backed (binary, libraries)';
  if (name) return name;
  if (sizeKb === 8192) return 'thread stacks (8 MiB)';
  if (sizeKb % 256 === 0) return 'anonymous, 256 KiB multiples (V8 pages, large mallocs)';
  return 'anonymous, other';
}

/** Private memory by class; kB. */
export function byClass(sample: MappingsSample): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of sample.maps) out.set(mappingClass(m), (out.get(mappingClass(m)) ?? 0) + m[2]);
  return out;
}

/**
 * How private memory moved between two samples: per class (kB, first → last) and the mappings that grew most (by
 * start address; a mapping that split or merged shows as one gone and one new).
 */
export function describeGrowth(first: MappingsSample, last: MappingsSample, top = 8): string[] {
  const lines: string[] = [];
  const a = byClass(first);
  const b = byClass(last);
  const classes = [...new Set([...a.keys(), ...b.keys()])].sort(
    (x, y) => (b.get(y) ?? 0) - (a.get(y) ?? 0) - ((b.get(x) ?? 0) - (a.get(x) ?? 0)),
  );
  const mib = (kb: number) => (kb / 1024).toFixed(1);
  lines.push(
    `threads ${first.threads} → ${last.threads}; ` +
      classes
        .map((c) => {
          const from = a.get(c) ?? 0;
          const to = b.get(c) ?? 0;
          return `${c} ${mib(from)} → ${mib(to)} MiB`;
        })
        .join('; '),
  );
  const before = new Map(first.maps.map((m) => [m[0], m]));
  const grown = last.maps
    .map((m) => ({ m, delta: m[2] - (before.get(m[0])?.[2] ?? 0), fresh: !before.has(m[0]) }))
    .filter((g) => g.delta > 0)
    .sort((x, y) => y.delta - x.delta)
    .slice(0, top);
  for (const { m, delta, fresh } of grown) {
    lines.push(
      `+${mib(delta)} MiB at ${m[0]} (${mib(m[1])} MiB ${m[3]} ${m[4] || 'anonymous'}, ${mappingClass(m)}` +
        `${fresh ? ', new' : ''}): ${mib(m[2])} MiB private now`,
    );
  }
  return lines;
}
