import type {
  Actionable,
  ActionsBlock,
  Button,
  ContextBlock,
  ContextBlockElement,
  HeaderBlock,
  KnownBlock,
  SectionBlock,
  TextObject,
} from '@slack/types';

/**
 * Slack's documented Block Kit limits for messages
 * (https://docs.slack.dev/reference/block-kit/blocks). Lengths are in UTF-16 code units, which is never
 * fewer than the characters Slack counts, so staying under them is always safe.
 */
export const SLACK_LIMITS = {
  blocksPerMessage: 50,
  sectionText: 3000,
  sectionFields: 10,
  sectionFieldText: 2000,
  headerText: 150,
  contextElements: 10,
  /** any text object, e.g. a context element */
  textObject: 3000,
  actionsElements: 25,
  buttonText: 75,
  buttonValue: 2000,
  buttonUrl: 3000,
  buttonAccessibilityLabel: 75,
  actionId: 255,
  blockId: 255,
} as const;

/**
 * Slack truncates `text` at 40,000 characters; the fallback only feeds notifications and screen readers,
 * so it is kept far shorter.
 */
export const MAX_FALLBACK_TEXT = 3000;

/**
 * Slack also rejects messages whose blocks carry too much text in total (`msg_blocks_too_long`). The
 * ceiling is undocumented (Slack staff cite ~12,000 text characters plus a buffer for the block JSON;
 * bolt-js#2509, #2867), so we budget every string in the blocks well below it.
 */
export const MAX_TOTAL_BLOCK_TEXT = 10_000;

/** A `chat.postMessage` / `respond` payload: blocks plus the notification fallback. */
export interface SlackMessage {
  text: string;
  blocks: KnownBlock[];
}

const ELLIPSIS = '…';

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** Largest cut ≤ max (UTF-16 units) that never splits a surrogate pair. */
function codePointCut(s: string, max: number): number {
  if (max <= 0) return 0;
  if (max >= s.length) return s.length;
  const last = s.charCodeAt(max - 1);
  const isHighSurrogate = last >= 0xd800 && last <= 0xdbff;
  return isHighSurrogate ? max - 1 : max;
}

/**
 * Largest cut ≤ max that falls on a grapheme boundary, so a flag, a ZWJ family or a skin-toned emoji is
 * kept whole or dropped whole. Falls back to a code-point boundary when the first grapheme alone is
 * longer than max (e.g. "zalgo" text with thousands of combining marks).
 */
function graphemeCut(s: string, max: number): number {
  if (max >= s.length) return s.length;
  if (max <= 0) return 0;
  // The grapheme holding the first dropped unit starts at the cut; one lookup, not a walk over the text.
  const cut = graphemes.segment(s).containing(max)?.index ?? max;
  return cut > 0 ? cut : codePointCut(s, max);
}

/**
 * Cuts `s` to at most `max` UTF-16 units without an ellipsis, for machine values (ids, button values)
 * where an added character would change the meaning. Never splits a surrogate pair.
 */
export function clipText(s: string, max: number): string {
  return s.slice(0, codePointCut(s, max));
}

/**
 * Shortens plain text to at most `max` UTF-16 units, ending with "…" when anything was removed.
 * Never splits a surrogate pair or a grapheme cluster.
 */
export function truncateText(s: string, max: number): string {
  if (s.length <= max) return s;
  if (max < ELLIPSIS.length) return '';
  const head = s.slice(0, graphemeCut(s, max - ELLIPSIS.length));
  return `${head.trimEnd()}${ELLIPSIS}`;
}

/**
 * Like {@link truncateText}, but for mrkdwn: a link `<https://…|label>`, a mention `<@U123>`/`<#C123>`/
 * `<!here>` or an entity `&amp;` cut in half is dropped whole rather than left dangling, since Slack
 * would otherwise show raw markup or swallow the rest of the text.
 */
export function truncateMrkdwn(s: string, max: number): string {
  if (s.length <= max) return s;
  if (max < ELLIPSIS.length) return '';
  let head = s.slice(0, graphemeCut(s, max - ELLIPSIS.length));
  const open = head.lastIndexOf('<');
  if (open !== -1 && head.indexOf('>', open) === -1) head = head.slice(0, open);
  const amp = head.lastIndexOf('&');
  if (amp !== -1 && /^&[#a-zA-Z0-9]*$/.test(head.slice(amp))) head = head.slice(0, amp);
  return `${head.trimEnd()}${ELLIPSIS}`;
}

/**
 * Escapes Slack's three control characters so untrusted text (alert summaries, labels, titles) renders
 * literally in mrkdwn and cannot inject `<!channel>`, mentions or links. Only these three are escaped,
 * as Slack documents: other HTML entities would be shown verbatim.
 */
export function escapeMrkdwn(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function fitTextObject<T extends TextObject>(object: T, max: number): T {
  const text = object.type === 'mrkdwn' ? truncateMrkdwn(object.text, max) : truncateText(object.text, max);
  return text === object.text ? object : { ...object, text };
}

/** Hands out ids unique within one message, suffixing repeats with `-2`, `-3`… within `max` units. */
class UniqueIds {
  readonly #seen = new Set<string>();

  constructor(private readonly max: number) {}

  claim(id: string): string {
    const base = clipText(id, this.max);
    if (!this.#seen.has(base)) {
      this.#seen.add(base);
      return base;
    }
    for (let n = 2; ; n++) {
      const suffix = `-${n}`;
      const candidate = `${clipText(id, this.max - suffix.length)}${suffix}`;
      if (!this.#seen.has(candidate)) {
        this.#seen.add(candidate);
        return candidate;
      }
    }
  }
}

interface MessageIds {
  actionIds: UniqueIds;
  blockIds: UniqueIds;
}

function isButton(element: Actionable): element is Button {
  return element.type === 'button';
}

function fitButton<T extends Button>(button: T): T {
  const fitted = { ...button, text: fitTextObject(button.text, SLACK_LIMITS.buttonText) };
  if (fitted.value !== undefined) fitted.value = clipText(fitted.value, SLACK_LIMITS.buttonValue);
  if (fitted.accessibility_label !== undefined) {
    fitted.accessibility_label = truncateText(
      fitted.accessibility_label,
      SLACK_LIMITS.buttonAccessibilityLabel,
    );
  }
  // A clipped URL points somewhere else; a button without one still works as an action.
  if (fitted.url !== undefined && fitted.url.length > SLACK_LIMITS.buttonUrl) delete fitted.url;
  return fitted;
}

/** Buttons get their text limits; every interactive element gets a unique action_id. */
function fitInteractive<T extends Actionable>(element: T, ids: MessageIds): T {
  const fitted = isButton(element) ? fitButton(element) : element;
  if (fitted.action_id === undefined) return fitted;
  return { ...fitted, action_id: ids.actionIds.claim(fitted.action_id) };
}

function fitSection(block: SectionBlock, ids: MessageIds): SectionBlock {
  const fitted: SectionBlock = { ...block };
  if (block.text) fitted.text = fitTextObject(block.text, SLACK_LIMITS.sectionText);
  if (block.fields) {
    fitted.fields = block.fields
      .slice(0, SLACK_LIMITS.sectionFields)
      .map((field) => fitTextObject(field, SLACK_LIMITS.sectionFieldText));
  }
  if (block.accessory && block.accessory.type !== 'image') {
    fitted.accessory = fitInteractive(block.accessory, ids);
  }
  return fitted;
}

function fitHeader(block: HeaderBlock): HeaderBlock {
  return { ...block, text: fitTextObject(block.text, SLACK_LIMITS.headerText) };
}

function fitContext(block: ContextBlock): ContextBlock {
  const elements = block.elements
    .slice(0, SLACK_LIMITS.contextElements)
    .map(
      (element): ContextBlockElement =>
        element.type === 'plain_text' || element.type === 'mrkdwn'
          ? fitTextObject(element, SLACK_LIMITS.textObject)
          : element,
    );
  return { ...block, elements };
}

function fitActions(block: ActionsBlock, ids: MessageIds): ActionsBlock {
  const elements = block.elements
    .slice(0, SLACK_LIMITS.actionsElements)
    .map((element) => fitInteractive(element, ids));
  return { ...block, elements };
}

function fitBlock(block: KnownBlock, ids: MessageIds): KnownBlock {
  let fitted: KnownBlock;
  switch (block.type) {
    case 'section':
      fitted = fitSection(block, ids);
      break;
    case 'header':
      fitted = fitHeader(block);
      break;
    case 'context':
      fitted = fitContext(block);
      break;
    case 'actions':
      fitted = fitActions(block, ids);
      break;
    default:
      // The bot builds only the kinds above; others pass through with their ids made safe.
      fitted = { ...block };
  }
  if (fitted.block_id !== undefined) fitted.block_id = ids.blockIds.claim(fitted.block_id);
  return fitted;
}

/** Every string in the block, as a conservative stand-in for what Slack counts towards its total. */
export function measureText(value: unknown): number {
  if (typeof value === 'string') return value.length;
  if (Array.isArray(value)) return value.reduce((sum: number, item) => sum + measureText(item), 0);
  if (typeof value === 'object' && value !== null) {
    return Object.values(value).reduce((sum: number, item) => sum + measureText(item), 0);
  }
  return 0;
}

function buildOmittedNote(count: number): ContextBlock {
  return {
    type: 'context',
    elements: [
      { type: 'mrkdwn', text: `${ELLIPSIS} ${count} more block${count === 1 ? '' : 's'} not shown` },
    ],
  };
}

/**
 * The last step before any message goes to Slack: returns a copy that Slack will accept.
 * Over-long text is truncated with "…" (never splitting a character, link or mention), lists are capped,
 * action_id and block_id are clipped to 255 and made unique across the message (`-2`, `-3`…; match
 * listeners with a pattern if a builder may repeat an id), and blocks past the 50-block or total-text
 * ceiling are replaced by a "… N more blocks not shown" note.
 */
export function fitMessage(msg: SlackMessage): SlackMessage {
  const ids: MessageIds = {
    actionIds: new UniqueIds(SLACK_LIMITS.actionId),
    blockIds: new UniqueIds(SLACK_LIMITS.blockId),
  };
  const candidates =
    msg.blocks.length > SLACK_LIMITS.blocksPerMessage
      ? msg.blocks.slice(0, SLACK_LIMITS.blocksPerMessage - 1)
      : msg.blocks;
  const blocks = candidates.map((block) => fitBlock(block, ids));

  const noteReserve = measureText(buildOmittedNote(msg.blocks.length));
  let total = blocks.reduce((sum, block) => sum + measureText(block), 0);
  const overBudget = () =>
    total + (blocks.length < msg.blocks.length ? noteReserve : 0) > MAX_TOTAL_BLOCK_TEXT;
  while (blocks.length > 0 && overBudget()) {
    const dropped = blocks.pop();
    total -= measureText(dropped);
  }

  const omitted = msg.blocks.length - blocks.length;
  if (omitted > 0) blocks.push(buildOmittedNote(omitted));
  return { text: truncateMrkdwn(msg.text, MAX_FALLBACK_TEXT), blocks };
}
