/**
 * Reads at most `maxBytes` of an HTTP body as UTF-8, so a huge answer is never buffered whole: `truncate` keeps the
 * first `maxBytes` and stops downloading; `refuse` throws (with `hint` appended) once the body is larger.
 */
export async function readBodyCapped(
  body: ReadableStream<Uint8Array> | null,
  maxBytes: number,
  onOverflow: 'truncate' | 'refuse',
  hint = '',
): Promise<string> {
  if (!body) return '';
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    const room = maxBytes - bytes;
    bytes += value.byteLength;
    if (bytes > maxBytes && onOverflow === 'refuse') {
      await reader.cancel().catch(() => undefined);
      throw new Error(`the answer exceeds ${maxBytes / 1024 / 1024} MiB${hint}`);
    }
    text += decoder.decode(value.byteLength > room ? value.subarray(0, room) : value, { stream: true });
    if (bytes >= maxBytes) {
      await reader.cancel().catch(() => undefined);
      return text + decoder.decode();
    }
  }
}
