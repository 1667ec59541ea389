import type { WebClient } from '@slack/web-api';

/** members of a user group, as Slack last said; milliseconds */
const CACHE_MS = 60_000;
/** per WebClient (per workspace and app): one group id means nothing to another app in the same process */
const caches = new WeakMap<WebClient, Map<string, { members: Set<string>; until: number }>>();

/**
 * The user groups among `candidates` (ids starting with S) that `userId` belongs to, asked of Slack
 * (`usergroups.users.list`, cached a minute). A group Slack will not list counts as not a member: an approval
 * never passes on an error.
 */
export async function groupsOf(client: WebClient, userId: string, candidates: string[]): Promise<string[]> {
  const groups = [...new Set(candidates.filter((c) => c.startsWith('S')))];
  let cache = caches.get(client);
  if (!cache) {
    cache = new Map();
    caches.set(client, cache);
  }
  const known = cache;
  const member = await Promise.all(
    groups.map(async (usergroup) => {
      const now = Date.now();
      let entry = known.get(usergroup);
      if (!entry || entry.until < now) {
        try {
          const res = await client.usergroups.users.list({ usergroup });
          entry = { members: new Set(res.users ?? []), until: now + CACHE_MS };
          known.set(usergroup, entry);
        } catch {
          return false;
        }
      }
      return entry.members.has(userId);
    }),
  );
  return groups.filter((_, i) => member[i]);
}
