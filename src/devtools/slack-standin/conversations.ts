import { EventEmitter } from 'node:events';

/** A channel the stand-in shows; `id` is what the Web API and payloads carry, `name` has no `#`. */
export interface StandInChannel {
  id: string;
  name: string;
}

/** A workspace member the person (or a test) can act as. */
export interface StandInUser {
  id: string;
  name: string;
  isBot?: boolean;
}

/** A user group (`S…`) as `usergroups.users.list` reports it, e.g. the approvers of a runbook step. */
export interface StandInUsergroup {
  id: string;
  /** shown as `@handle` */
  handle: string;
  users: string[];
}

/** A file as a message shows it; the bytes are served at `/files/<id>`. */
export interface StoredFileRef {
  id: string;
  name: string;
  title: string;
  mimetype: string;
  /** bytes */
  size: number;
}

/** Where a stored message came from. */
export type MessageSource =
  /** the bot called the Web API */
  | 'web-api'
  /** a person (or a test acting as one) typed it */
  | 'user'
  /** the bot's synchronous answer to a slash command */
  | 'command-ack'
  /** the bot POSTed it to a response_url */
  | 'response-url'
  /** said by the stand-in itself, as Slackbot does (e.g. a slash command that failed) */
  | 'slackbot';

/** One message as the stand-in keeps it: enough to render it and to hand it back in a `block_actions` payload. */
export interface StoredMessage {
  /** channel id */
  channel: string;
  ts: string;
  /** the thread's root ts, on replies only */
  threadTs?: string;
  /** author's user id (the bot is `U0BOT`) */
  user: string;
  botId?: string;
  /** chat.postMessage's `username` override */
  username?: string;
  text: string;
  /** false when the poster asked for plain text (`mrkdwn: false`) */
  mrkdwn: boolean;
  blocks?: Record<string, unknown>[];
  attachments?: Record<string, unknown>[];
  metadata?: unknown;
  files?: StoredFileRef[];
  /** visible only to this user */
  ephemeralTo?: string;
  /** set by chat.update */
  edited?: { user: string; ts: string };
  /** a thread reply also shown in the channel */
  replyBroadcast?: boolean;
  reactions: { name: string; users: string[] }[];
  /** when it was stored; epoch milliseconds (ts values are synthetic and say nothing about the time) */
  at: number;
  source: MessageSource;
}

/** What the page (and anyone listening) is told about, in order. */
export type StoreEvent =
  | { type: 'message'; message: StoredMessage }
  | { type: 'deleted'; channel: string; ts: string; ephemeralTo?: string }
  | { type: 'channel'; channel: StandInChannel }
  | { type: 'user'; user: StandInUser }
  | { type: 'bot'; connected: boolean }
  /** a modal opened (or its content replaced, e.g. by `response_action: update`) */
  | { type: 'view'; view: StoredView }
  /** a modal submitted or closed; it is no longer shown */
  | { type: 'view-closed'; id: string; user?: string }
  | { type: 'notice'; level: 'error' | 'warning' | 'info'; text: string; user?: string; at: number };

export const BOT_USER: StandInUser = { id: 'U0BOT', name: 'ai-sre', isBot: true };
export const BOT_ID = 'B0BOT';
/** says what Slack itself says, e.g. that a slash command failed */
export const SLACKBOT: StandInUser = { id: 'USLACKBOT', name: 'Slackbot', isBot: true };
export const DEFAULT_CHANNELS: StandInChannel[] = [{ id: 'C0001', name: 'incidents' }];
export const DEFAULT_USERS: StandInUser[] = [{ id: 'U0001', name: 'alice' }];

const CHANNEL_ID = /^[CGD][A-Z0-9]{2,}$/;
const USER_ID = /^[UW][A-Z0-9]{2,}$/;
/** channel names Slack accepts: lower-case letters, digits, - and _ */
const CHANNEL_NAME = /^[a-z0-9][a-z0-9_-]{0,79}$/;

export interface ConversationStoreOptions {
  channels?: StandInChannel[];
  users?: StandInUser[];
  usergroups?: StandInUsergroup[];
}

/** A modal the bot opened with `views.open`. */
export interface StoredView {
  id: string;
  triggerId: string;
  /**
   * whose click or command the trigger came from: the modal is theirs alone. Undefined when the stand-in did not
   * hand the trigger out (a test calling views.open with a made-up one): then anyone may see and submit it.
   */
  user?: string;
  view: Record<string, unknown>;
  /** epoch milliseconds */
  openedAt: number;
  /** set once a person submitted it and the bot accepted the submission */
  submittedBy?: string;
  /** set when the person closed it without submitting; epoch milliseconds */
  closedAt?: number;
}

/** Triggers remembered for views.open; Slack honours one for 3 s, so only the newest few can still be used. */
const MAX_TRIGGERS = 1_000;

/**
 * The stand-in's memory of the workspace: channels, people, messages (with threads, edits, ephemeral messages, files,
 * reactions, modals). Fed by the Web API calls the bot makes and by what a person does on the page; every change is
 * an event.
 */
export class ConversationStore {
  readonly #channels = new Map<string, StandInChannel>();
  readonly #users = new Map<string, StandInUser>();
  readonly #usergroups = new Map<string, StandInUsergroup>();
  /** keyed by `${channel}/${ts}` */
  readonly #messages = new Map<string, StoredMessage>();
  readonly #files = new Map<string, { ref: StoredFileRef; bytes: Buffer | null; alt?: string }>();
  readonly #views: StoredView[] = [];
  #viewCounter = 0;
  /** trigger_id → the user it was handed out for */
  readonly #triggers = new Map<string, string>();
  readonly #events = new EventEmitter();
  #tsCounter = 0;
  #autoChannelCounter = 0;

  constructor(opts: ConversationStoreOptions = {}) {
    for (const channel of opts.channels ?? DEFAULT_CHANNELS) this.#channels.set(channel.id, { ...channel });
    for (const user of [BOT_USER, SLACKBOT, ...(opts.users ?? DEFAULT_USERS)])
      this.#users.set(user.id, { ...user });
    for (const group of opts.usergroups ?? [])
      this.#usergroups.set(group.id, { ...group, users: [...group.users] });
    // one listener per open page; more than the default 10 pages is normal, not a leak
    this.#events.setMaxListeners(0);
  }

  /** Unique, increasing message timestamps in Slack's "seconds.micros" shape. */
  nextTs(): string {
    this.#tsCounter += 100;
    const seconds = 1_700_000_000 + Math.floor(this.#tsCounter / 1_000_000);
    return `${seconds}.${String(this.#tsCounter % 1_000_000).padStart(6, '0')}`;
  }

  /** Calls `listener` for every later change; returns the unsubscribe function. */
  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.#events.on('event', listener);
    return () => this.#events.off('event', listener);
  }

  emit(event: StoreEvent): void {
    this.#events.emit('event', event);
  }

  channels(): StandInChannel[] {
    return [...this.#channels.values()];
  }

  users(): StandInUser[] {
    return [...this.#users.values()];
  }

  usergroups(): StandInUsergroup[] {
    return [...this.#usergroups.values()];
  }

  usergroup(id: string): StandInUsergroup | undefined {
    return this.#usergroups.get(id);
  }

  user(idOrName: string): StandInUser | undefined {
    const byId = this.#users.get(idOrName);
    if (byId) return byId;
    const name = idOrName.replace(/^@/, '');
    return [...this.#users.values()].find((u) => u.name === name);
  }

  /** A user by id, registering ids never seen (Slack knows everyone; the stand-in learns them as they act). */
  ensureUser(id: string): StandInUser {
    const known = this.#users.get(id);
    if (known) return known;
    const user = { id, name: `user-${id.toLowerCase()}` };
    this.#users.set(id, user);
    this.emit({ type: 'user', user });
    return user;
  }

  /** A channel by id, by name, or by `#name`; undefined when unknown. */
  channel(ref: string): StandInChannel | undefined {
    const byId = this.#channels.get(ref);
    if (byId) return byId;
    const name = ref.replace(/^#/, '');
    return [...this.#channels.values()].find((c) => c.name === name);
  }

  /**
   * The channel `ref` (an id, a name or `#name`) stands for, created when unknown: an id keeps its id, a name gets a
   * made-up id, a user id becomes the direct-message channel with that user. Undefined when `ref` is none of those.
   */
  ensureChannel(ref: string): StandInChannel | undefined {
    const known = this.channel(ref);
    if (known) return known;
    let channel: StandInChannel;
    if (CHANNEL_ID.test(ref)) {
      channel = { id: ref, name: `channel-${ref.toLowerCase()}` };
    } else if (USER_ID.test(ref)) {
      const id = `D${ref.slice(1)}`;
      const existing = this.#channels.get(id);
      if (existing) return existing;
      channel = { id, name: this.ensureUser(ref).name };
    } else {
      const name = ref.replace(/^#/, '');
      if (!CHANNEL_NAME.test(name)) return undefined;
      this.#autoChannelCounter += 1;
      channel = { id: `C0AUTO${String(this.#autoChannelCounter).padStart(4, '0')}`, name };
    }
    this.#channels.set(channel.id, channel);
    this.emit({ type: 'channel', channel });
    return channel;
  }

  /** A message by channel id and ts; any channel when `channel` is omitted. */
  message(ts: string, channel?: string): StoredMessage | undefined {
    if (channel !== undefined) return this.#messages.get(key(channel, ts));
    return [...this.#messages.values()].find((m) => m.ts === ts);
  }

  /**
   * Every message (threads included), oldest first. With `viewer`, ephemeral messages of other users are left out;
   * without, all are listed.
   */
  messages(filter: { channel?: string; viewer?: string } = {}): StoredMessage[] {
    return [...this.#messages.values()]
      .filter((m) => filter.channel === undefined || m.channel === filter.channel)
      .filter((m) => visibleTo(m, filter.viewer))
      .sort((a, b) => compareTs(a.ts, b.ts));
  }

  /** The channel's top-level messages (and replies broadcast to it), oldest first. */
  history(channel: string, viewer?: string): StoredMessage[] {
    return this.messages({ channel, viewer }).filter((m) => m.threadTs === undefined || m.replyBroadcast);
  }

  /** A thread's replies, oldest first (the root not included). */
  replies(channel: string, threadTs: string, viewer?: string): StoredMessage[] {
    return this.messages({ channel, viewer }).filter((m) => m.threadTs === threadTs);
  }

  /** Stores a new message (its `ts` must be new) and tells the listeners. */
  add(
    input: Omit<StoredMessage, 'reactions' | 'at' | 'mrkdwn'> & Partial<Pick<StoredMessage, 'mrkdwn'>>,
  ): StoredMessage {
    const message: StoredMessage = { mrkdwn: true, ...input, reactions: [], at: Date.now() };
    if (message.threadTs !== undefined) message.threadTs = this.rootOf(message.channel, message.threadTs);
    if (message.blocks) message.blocks = withBlockIds(message.blocks, message.ts);
    this.#messages.set(key(message.channel, message.ts), message);
    this.emit({ type: 'message', message });
    return message;
  }

  /** Replaces what is given (text, blocks…) in place; undefined when there is no such message. */
  update(
    channel: string,
    ts: string,
    patch: Partial<Pick<StoredMessage, 'text' | 'blocks' | 'attachments' | 'metadata' | 'edited' | 'files'>>,
  ): StoredMessage | undefined {
    const message = this.#messages.get(key(channel, ts));
    if (!message) return undefined;
    for (const [field, value] of Object.entries(patch)) {
      if (value !== undefined) (message as unknown as Record<string, unknown>)[field] = value;
    }
    if (patch.blocks) message.blocks = withBlockIds(patch.blocks, ts);
    this.emit({ type: 'message', message });
    return message;
  }

  /** Removes a message; false when there was none. Its replies stay, as in Slack ("This message was deleted."). */
  delete(channel: string, ts: string): boolean {
    const message = this.#messages.get(key(channel, ts));
    if (!message) return false;
    this.#messages.delete(key(channel, ts));
    this.emit({
      type: 'deleted',
      channel,
      ts,
      ...(message.ephemeralTo ? { ephemeralTo: message.ephemeralTo } : {}),
    });
    return true;
  }

  /** Adds `user`'s reaction; false when the message is unknown or the user already reacted so. */
  react(channel: string, ts: string, name: string, user: string): boolean {
    const message = this.#messages.get(key(channel, ts));
    if (!message) return false;
    let reaction = message.reactions.find((r) => r.name === name);
    if (!reaction) {
      reaction = { name, users: [] };
      message.reactions.push(reaction);
    }
    if (reaction.users.includes(user)) return false;
    reaction.users.push(user);
    this.emit({ type: 'message', message });
    return true;
  }

  /** Notes whose action a trigger_id came with, so the modal the bot opens with it is shown to that user. */
  rememberTrigger(triggerId: string, user: string): void {
    this.#triggers.set(triggerId, user);
    for (const oldest of this.#triggers.keys()) {
      if (this.#triggers.size <= MAX_TRIGGERS) break;
      this.#triggers.delete(oldest);
    }
  }

  /** Records a modal the bot opened (its user is the trigger's) and tells the listeners. */
  openView(triggerId: string, view: Record<string, unknown>): StoredView {
    this.#viewCounter += 1;
    const user = this.#triggers.get(triggerId);
    const stored: StoredView = {
      id: `V${String(this.#viewCounter).padStart(8, '0')}`,
      triggerId,
      ...(user !== undefined ? { user } : {}),
      view,
      openedAt: Date.now(),
    };
    this.#views.push(stored);
    this.emit({ type: 'view', view: stored });
    return stored;
  }

  /** Modals opened so far, submitted and closed ones too, oldest first. */
  views(): readonly StoredView[] {
    return this.#views;
  }

  view(id: string): StoredView | undefined {
    return this.#views.find((v) => v.id === id);
  }

  /** Modals neither submitted nor closed, oldest first; with `viewer`, only those that user may see. */
  openViews(viewer?: string): StoredView[] {
    return this.#views.filter((v) => isOpen(v) && viewableBy(v, viewer));
  }

  /** Replaces an open modal's content in place (`response_action: update`); false when it is not open. */
  updateView(id: string, view: Record<string, unknown>): boolean {
    const stored = this.view(id);
    if (!stored || !isOpen(stored)) return false;
    stored.view = view;
    this.emit({ type: 'view', view: stored });
    return true;
  }

  /** Marks an open modal submitted by `submittedBy`, or else closed; false when it was not open. */
  closeView(id: string, submittedBy?: string): boolean {
    const stored = this.view(id);
    if (!stored || !isOpen(stored)) return false;
    if (submittedBy !== undefined) stored.submittedBy = submittedBy;
    else stored.closedAt = Date.now();
    this.emit({ type: 'view-closed', id, ...(stored.user !== undefined ? { user: stored.user } : {}) });
    return true;
  }

  /** Remembers a file handed an upload URL (`files.getUploadURLExternal`), before its bytes arrive. */
  registerFile(id: string, name: string, alt?: string): void {
    this.#files.set(id, {
      ref: { id, name, title: name, mimetype: mimeTypeOf(null, name), size: 0 },
      bytes: null,
      ...(alt ? { alt } : {}),
    });
  }

  /** Stores the bytes POSTed to a file's upload URL; the content type is sniffed from them. */
  storeFileBytes(id: string, bytes: Buffer): void {
    const file = this.#files.get(id) ?? {
      ref: { id, name: id, title: id, mimetype: '', size: 0 },
      bytes: null,
    };
    file.bytes = bytes;
    file.ref = { ...file.ref, size: bytes.length, mimetype: mimeTypeOf(bytes, file.ref.name) };
    this.#files.set(id, file);
  }

  /** The file's reference (for a message) with the title given at completion; undefined for an unknown id. */
  completeFile(id: string, title?: string): StoredFileRef | undefined {
    const file = this.#files.get(id);
    if (!file) return undefined;
    if (title) file.ref = { ...file.ref, title };
    return file.ref;
  }

  file(id: string): { ref: StoredFileRef; bytes: Buffer | null } | undefined {
    return this.#files.get(id);
  }

  /** The ts of the thread a reply to `ts` belongs to: replying to a reply lands in its root's thread, as in Slack. */
  rootOf(channel: string, ts: string): string {
    return this.#messages.get(key(channel, ts))?.threadTs ?? ts;
  }
}

/** The message as Slack's API shows it (chat.postMessage's `message`, a block action's `message`, history). */
export function toSlackMessage(message: StoredMessage, store: ConversationStore): Record<string, unknown> {
  const out: Record<string, unknown> = {
    type: 'message',
    user: message.user,
    text: message.text,
    ts: message.ts,
    team: 'T0001',
  };
  if (message.botId) {
    out.bot_id = message.botId;
    out.app_id = 'A0001';
  }
  if (message.username) out.username = message.username;
  if (message.blocks) out.blocks = message.blocks;
  if (message.attachments) out.attachments = message.attachments;
  if (message.metadata !== undefined) out.metadata = message.metadata;
  if (message.files) out.files = message.files;
  if (message.edited) out.edited = message.edited;
  if (message.reactions.length > 0)
    out.reactions = message.reactions.map((r) => ({ name: r.name, users: r.users, count: r.users.length }));
  if (message.threadTs !== undefined) {
    out.thread_ts = message.threadTs;
    out.parent_user_id = store.message(message.threadTs, message.channel)?.user;
  } else {
    const replies = store.replies(message.channel, message.ts);
    if (replies.length > 0) {
      out.thread_ts = message.ts;
      out.reply_count = replies.length;
      out.reply_users = [...new Set(replies.map((r) => r.user))];
      out.latest_reply = replies.at(-1)?.ts;
    }
  }
  return out;
}

/** Orders Slack timestamps ("seconds.micros"); doubles would lose the micros at today's seconds. */
export function compareTs(a: string, b: string): number {
  const [as = '0', af = ''] = a.split('.');
  const [bs = '0', bf = ''] = b.split('.');
  const bySeconds = Number(as) - Number(bs);
  if (bySeconds !== 0) return bySeconds;
  return Number(af.padEnd(6, '0')) - Number(bf.padEnd(6, '0'));
}

/** The content type to serve a file with; only raster images are ever served as what they are. */
export function mimeTypeOf(bytes: Buffer | null, name: string): string {
  if (bytes !== null && bytes.length >= 8) {
    if (bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])))
      return 'image/png';
    if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
    if (bytes.subarray(0, 4).toString('latin1') === 'GIF8') return 'image/gif';
    if (
      bytes.subarray(0, 4).toString('latin1') === 'RIFF' &&
      bytes.subarray(8, 12).toString('latin1') === 'WEBP'
    )
      return 'image/webp';
    return /\.(txt|log|md|csv)$/i.test(name) ? 'text/plain' : 'application/octet-stream';
  }
  // nothing uploaded yet: what the name says, as Slack guesses before it has the bytes
  if (/\.png$/i.test(name)) return 'image/png';
  if (/\.jpe?g$/i.test(name)) return 'image/jpeg';
  if (/\.gif$/i.test(name)) return 'image/gif';
  return 'application/octet-stream';
}

function key(channel: string, ts: string): string {
  return `${channel}/${ts}`;
}

function isOpen(view: StoredView): boolean {
  return view.submittedBy === undefined && view.closedAt === undefined;
}

/** A modal is its user's alone; one whose trigger the stand-in did not hand out is anyone's. */
export function viewableBy(view: Pick<StoredView, 'user'>, viewer: string | undefined): boolean {
  return viewer === undefined || view.user === undefined || view.user === viewer;
}

function visibleTo(message: StoredMessage, viewer: string | undefined): boolean {
  return viewer === undefined || message.ephemeralTo === undefined || message.ephemeralTo === viewer;
}

/** Slack gives every block without a `block_id` one of its own; a block action names the block by it. */
function withBlockIds(blocks: Record<string, unknown>[], ts: string): Record<string, unknown>[] {
  return blocks.map((block, index) =>
    typeof block.block_id === 'string' ? block : { ...block, block_id: `b${ts.replace('.', '')}-${index}` },
  );
}
