import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { z } from 'zod';

/** Which Slack channel shows which service's incidents. Channel ids (C0123…) are preferred; names work for public channels the bot is in. */
export const RoutingFile = z.object({
  defaultChannel: z.string().min(1, { error: 'expected the channel for services not listed' }),
  services: z.record(z.string(), z.string().min(1)).default({}),
});
export type RoutingFile = z.infer<typeof RoutingFile>;

export interface ChannelRouter {
  channelFor(service: string): string;
  /** where posts about no one service go (the weekly suggestions) */
  defaultChannel(): string;
}

export function createChannelRouter(routing: RoutingFile): ChannelRouter {
  return {
    // own keys only: a service named "constructor" or "toString" is not a channel of Object.prototype's
    channelFor: (service) =>
      Object.hasOwn(routing.services, service)
        ? (routing.services[service] as string)
        : routing.defaultChannel,
    defaultChannel: () => routing.defaultChannel,
  };
}

/** Reads and validates the routing file; every problem names the file and the field. */
export async function loadRouting(path: string): Promise<RoutingFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`ROUTING_FILE ${path}: cannot read it (${(err as Error).message})`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new Error(`ROUTING_FILE ${path}: not valid YAML (${(err as Error).message})`);
  }
  const parsed = RoutingFile.safeParse(doc);
  if (!parsed.success) {
    throw new Error(
      `ROUTING_FILE ${path}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}
