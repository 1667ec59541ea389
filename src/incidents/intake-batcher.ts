/**
 * Group commit for the intake: deliveries that arrive while earlier batches are being written go together into the
 * next statement, so one commit (one WAL flush) serves many. Nothing waits on a timer: at low load every batch holds
 * one delivery and is written at once.
 */
export interface Batcher<I, O> {
  submit(item: I): Promise<O>;
}

export function createBatcher<I, O>(
  write: (items: I[]) => Promise<O[]>,
  opts: { maxBatch: number; maxConcurrent: number },
): Batcher<I, O> {
  const pending: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  let running = 0;
  const flush = () => {
    while (running < opts.maxConcurrent && pending.length > 0) {
      const batch = pending.splice(0, opts.maxBatch);
      running += 1;
      write(batch.map((b) => b.item))
        .then(
          (results) => {
            batch.forEach((b, i) => {
              b.resolve(results[i] as O);
            });
          },
          (err: unknown) => {
            for (const b of batch) b.reject(err);
          },
        )
        .finally(() => {
          running -= 1;
          flush();
        });
    }
  };
  return {
    submit(item) {
      return new Promise<O>((resolve, reject) => {
        pending.push({ item, resolve, reject });
        flush();
      });
    },
  };
}
