import assert from 'node:assert/strict';
import { test } from 'node:test';
import type {
  ActionsBlock,
  Button,
  ContextBlock,
  HeaderBlock,
  KnownBlock,
  SectionBlock,
  TextObject,
} from '@slack/types';
import {
  buildIncidentCard,
  buildIncidentList,
  buildTimelineMessage,
  type IncidentCardView,
} from '../src/slack/blocks/incident-card.js';
import {
  escapeMrkdwn,
  fitMessage,
  MAX_TOTAL_BLOCK_TEXT,
  truncateMrkdwn,
  truncateText,
} from '../src/slack/blocks/limits.js';

const OPENED_AT = new Date('2023-11-14T22:13:20.000Z'); // unix 1700000000
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function buildView(overrides: Partial<IncidentCardView> = {}): IncidentCardView {
  return {
    id: '42',
    title: 'Checkout latency above SLO',
    service: 'checkout-api',
    severity: 'critical',
    status: 'investigating',
    summary: 'p99 latency 2.3s for 10m',
    alertCount: 3,
    openedAt: OPENED_AT,
    resolvedAt: null,
    links: [],
    labels: {},
    ...overrides,
  };
}

function section(text: string): SectionBlock {
  return { type: 'section', text: { type: 'mrkdwn', text } };
}

function button(actionId: string, text = 'Go'): Button {
  return { type: 'button', action_id: actionId, text: { type: 'plain_text', text } };
}

function textOf(object: TextObject | undefined): string {
  assert.ok(object, 'expected a text object');
  return object.text;
}

function asType<T extends KnownBlock['type']>(
  block: KnownBlock | undefined,
  type: T,
): Extract<KnownBlock, { type: T }> {
  assert.ok(block, `expected a ${type} block`);
  assert.equal(block.type, type);
  return block as Extract<KnownBlock, { type: T }>;
}

function fieldMap(block: KnownBlock | undefined): Map<string, string> {
  const fields = asType(block, 'section').fields ?? [];
  return new Map(
    fields.map((field) => {
      const [name = '', ...value] = field.text.split('\n');
      return [name.replace(/\*/g, ''), value.join('\n')];
    }),
  );
}

function contextTexts(block: KnownBlock | undefined): string[] {
  return asType(block, 'context').elements.map((element) => ('text' in element ? element.text : ''));
}

test('a 100-block message keeps the first 49 blocks and notes the other 51', () => {
  const blocks = Array.from({ length: 100 }, (_, i) => section(`line ${i}`));
  const fitted = fitMessage({ text: 'many', blocks });

  assert.equal(fitted.blocks.length, 50);
  assert.equal(textOf(asType(fitted.blocks[48], 'section').text), 'line 48');
  assert.deepEqual(contextTexts(fitted.blocks[49]), ['… 51 more blocks not shown']);
  assert.equal(blocks.length, 100, 'input is not mutated');
});

test('a 10,000-character summary is cut to at most 3000 characters ending with …', () => {
  const summary = 'disk full on node-7. '.repeat(500).slice(0, 10_000);
  const card = buildIncidentCard(buildView({ summary }));

  const summaryText = textOf(asType(card.blocks[2], 'section').text);
  assert.ok(summaryText.length <= 3000, `length ${summaryText.length}`);
  assert.ok(summaryText.length > 2900, 'keeps as much as fits');
  assert.ok(summaryText.endsWith('…'));
  assert.ok(summaryText.startsWith('disk full on node-7.'));
});

test('duplicate action_ids and block_ids are made unique across the message', () => {
  const fitted = fitMessage({
    text: 'x',
    blocks: [
      {
        type: 'actions',
        block_id: 'steps',
        elements: [button('approve'), button('approve'), button('approve-2')],
      },
      { ...section('step'), block_id: 'steps', accessory: button('approve') },
    ],
  });

  const actions = asType(fitted.blocks[0], 'actions');
  const ids = actions.elements.map((element) => ('action_id' in element ? element.action_id : undefined));
  assert.deepEqual(ids, ['approve', 'approve-2', 'approve-2-2']);
  const accessory = asType(fitted.blocks[1], 'section').accessory;
  assert.ok(accessory && 'action_id' in accessory);
  assert.equal(accessory.action_id, 'approve-3');
  assert.deepEqual(
    fitted.blocks.map((block) => block.block_id),
    ['steps', 'steps-2'],
  );
});

test('over-long ids stay within 255 characters even after suffixing', () => {
  const long = 'a'.repeat(300);
  const fitted = fitMessage({
    text: 'x',
    blocks: [{ type: 'actions', elements: [button(long), button(long)] }],
  });

  const ids = asType(fitted.blocks[0], 'actions').elements.map((element) =>
    'action_id' in element ? (element.action_id ?? '') : '',
  );
  assert.equal(ids[0], 'a'.repeat(255));
  assert.equal(ids[1], `${'a'.repeat(253)}-2`);
});

test('truncation never leaves half a link, mention or entity', () => {
  const link = `${'a'.repeat(2990)} <https://grafana.example.com/d/x|dashboard> tail`;
  const cutLink = textOf(asType(fitMessage({ text: '', blocks: [section(link)] }).blocks[0], 'section').text);
  assert.equal(cutLink, `${'a'.repeat(2990)}…`);

  assert.equal(truncateMrkdwn('paged <@U0123ABCD> and <#C999>', 12), 'paged…');
  assert.equal(truncateMrkdwn('ping <!subteam^S1|oncall> now', 20), 'ping…');
  assert.equal(truncateMrkdwn('a &amp; b', 5), 'a…', 'entity &am is not left behind');
  assert.equal(truncateMrkdwn('see <https://x.io|docs> and more text', 25), 'see <https://x.io|docs>…');
});

test('truncation never splits a surrogate pair or an emoji sequence', () => {
  const pair = `${'a'.repeat(2998)}😀😀`;
  const cutPair = textOf(asType(fitMessage({ text: '', blocks: [section(pair)] }).blocks[0], 'section').text);
  assert.equal(cutPair, `${'a'.repeat(2998)}…`);
  assert.doesNotMatch(cutPair, LONE_SURROGATE);

  const family = '👨‍👩‍👧‍👦'; // 11 UTF-16 units joined by ZWJ
  assert.equal(truncateText(`ok ${family}${family}`, 10), 'ok…');
  assert.equal(truncateText(`ok ${family}${family}`, 15), `ok ${family}…`);

  assert.equal(truncateText('go 🇫🇷🇩🇪', 8), 'go 🇫🇷…', 'flags are regional-indicator pairs');
  const zalgo = `z${'\u0301'.repeat(20)}`; // one grapheme longer than the limit
  assert.equal(truncateText(zalgo, 10), `z${'\u0301'.repeat(8)}…`);

  const header = `🔴 ${'🔥'.repeat(100)}`;
  const fittedHeader = asType(
    fitMessage({ text: '', blocks: [{ type: 'header', text: { type: 'plain_text', text: header } }] })
      .blocks[0],
    'header',
  );
  assert.ok(fittedHeader.text.text.length <= 150);
  assert.ok(fittedHeader.text.text.endsWith('🔥…'));
  assert.doesNotMatch(fittedHeader.text.text, LONE_SURROGATE);
});

test('escapeMrkdwn neutralises mentions, broadcasts and ampersands', () => {
  assert.equal(escapeMrkdwn('<!channel> & <@U1>'), '&lt;!channel&gt; &amp; &lt;@U1&gt;');
  assert.equal(
    escapeMrkdwn('a &amp; b'),
    'a &amp;amp; b',
    'already-escaped text is escaped again, not trusted',
  );
});

test('alert text cannot inject mentions into the card or its notification text', () => {
  const card = buildIncidentCard(
    buildView({
      title: 'DB down <!channel>',
      service: 'db <@U1>',
      summary: 'wake up <!here> & <https://evil|x>',
    }),
  );

  assert.equal(
    textOf(asType(card.blocks[2], 'section').text),
    'wake up &lt;!here&gt; &amp; &lt;https://evil|x&gt;',
  );
  assert.equal(fieldMap(card.blocks[1]).get('Service'), 'db &lt;@U1&gt;');
  assert.ok(card.text.includes('DB down &lt;!channel&gt;'));
  assert.doesNotMatch(card.text, /<[!@#]/);
});

test('the card shows header and fields with the incident values', () => {
  const card = buildIncidentCard(buildView());

  const header = asType(card.blocks[0], 'header') satisfies HeaderBlock;
  assert.equal(header.text.text, '🔴 INC-42 · Checkout latency above SLO');
  const fields = fieldMap(card.blocks[1]);
  assert.deepEqual([...fields.keys()], ['Severity', 'Service', 'Status', 'Alerts', 'Started']);
  assert.equal(fields.get('Severity'), '🔴 Critical');
  assert.equal(fields.get('Service'), 'checkout-api');
  assert.equal(fields.get('Status'), 'Investigating');
  assert.equal(fields.get('Alerts'), '3');
  assert.equal(
    fields.get('Started'),
    '<!date^1700000000^{date_short_pretty} {time}|2023-11-14T22:13:20.000Z>',
  );
  assert.equal(textOf(asType(card.blocks[2], 'section').text), 'p99 latency 2.3s for 10m');
  assert.equal(card.blocks.length, 3, 'no links or labels context when there are none');
  assert.equal(card.text, '🔴 INC-42 [Critical] Checkout latency above SLO — checkout-api (Investigating)');
});

test('a resolved incident shows Resolved and Duration', () => {
  const resolvedAt = new Date(OPENED_AT.getTime() + 90 * 60_000);
  const card = buildIncidentCard(buildView({ status: 'resolved', resolvedAt }));

  const fields = fieldMap(card.blocks[1]);
  assert.equal(fields.get('Status'), 'Resolved');
  assert.equal(
    fields.get('Resolved'),
    '<!date^1700005400^{date_short_pretty} {time}|2023-11-14T23:43:20.000Z>',
  );
  assert.equal(fields.get('Duration'), '1h 30m');
  assert.match(card.text, /\(Resolved\)$/);
});

test('only http(s) links are shown, with | and & made safe', () => {
  const card = buildIncidentCard(
    buildView({
      links: [
        { label: 'Alertmanager', url: 'https://am.example.com/graph?g0.expr=up|x&g0.tab=1' },
        { label: 'click me', url: 'javascript:alert(1)' },
        { label: 'data', url: 'data:text/html,<b>x</b>' },
        { label: 'not a url', url: 'runbook' },
        { label: 'Runbook <!channel>', url: 'http://wiki.example.com/runbooks/checkout' },
      ],
    }),
  );

  assert.deepEqual(contextTexts(card.blocks[3]), [
    '<https://am.example.com/graph?g0.expr=up%7Cx&amp;g0.tab=1|Alertmanager>',
    '<http://wiki.example.com/runbooks/checkout|Runbook &lt;!channel&gt;>',
  ]);
  assert.ok(!JSON.stringify(card.blocks).includes('javascript:'));
});

test('key labels come first and the rest are capped with a count', () => {
  const labels: Record<string, string> = {
    zeta: '1',
    alertname: 'HighLatency',
    namespace: 'prod',
    pod: '<@U1>',
  };
  for (let i = 0; i < 10; i++) labels[`extra${i}`] = String(i);
  const card = buildIncidentCard(buildView({ labels }));

  const texts = contextTexts(card.blocks.at(-1));
  assert.deepEqual(texts.slice(0, 4), [
    'alertname=HighLatency',
    'namespace=prod',
    'pod=&lt;@U1&gt;',
    'extra0=0',
  ]);
  assert.equal(texts.length, 9);
  assert.equal(texts.at(-1), '+6 more labels');
});

test('fields, context elements, actions and button text are capped', () => {
  const fitted = fitMessage({
    text: 'x'.repeat(50_000),
    blocks: [
      { type: 'section', fields: Array.from({ length: 12 }, (_, i) => ({ type: 'mrkdwn', text: `f${i}` })) },
      { type: 'section', fields: [{ type: 'plain_text', text: 'f'.repeat(2500) }] },
      {
        type: 'context',
        elements: Array.from({ length: 12 }, (_, i) => ({ type: 'mrkdwn', text: `c${i}` })),
      },
      { type: 'actions', elements: Array.from({ length: 30 }, (_, i) => button(`b${i}`, 'B'.repeat(100))) },
    ],
  });

  assert.ok(fitted.text.length <= 3000);
  const fields = asType(fitted.blocks[0], 'section').fields ?? [];
  assert.deepEqual(
    fields.map((field) => field.text),
    Array.from({ length: 10 }, (_, i) => `f${i}`),
  );
  assert.equal(textOf(asType(fitted.blocks[1], 'section').fields?.[0]), `${'f'.repeat(1999)}…`);
  assert.equal((asType(fitted.blocks[2], 'context') satisfies ContextBlock).elements.length, 10);
  const actions = asType(fitted.blocks[3], 'actions') satisfies ActionsBlock;
  assert.equal(actions.elements.length, 25);
  const first = actions.elements[0];
  assert.ok(first?.type === 'button');
  assert.equal(first.text.text, `${'B'.repeat(74)}…`);
});

test('blocks past the total text budget are replaced by the note', () => {
  const blocks = Array.from({ length: 8 }, (_, i) => section(`${i}`.repeat(2900)));
  const fitted = fitMessage({ text: 'big', blocks });

  const total = JSON.stringify(fitted.blocks).length;
  assert.ok(total < MAX_TOTAL_BLOCK_TEXT + 1000, `serialised ${total}`);
  assert.equal(fitted.blocks.length, 4);
  assert.deepEqual(contextTexts(fitted.blocks[3]), ['… 5 more blocks not shown']);
});

test('a timeline post shows the event text, actor mention and time', () => {
  const message = buildTimelineMessage({
    type: 'step.approved',
    actor: 'U0123ABCD',
    at: OPENED_AT,
    text: 'Approved: restart <checkout> pods',
  });

  assert.equal(textOf(asType(message.blocks[0], 'section').text), 'Approved: restart &lt;checkout&gt; pods');
  assert.deepEqual(contextTexts(message.blocks[1]), [
    '`step.approved` · <@U0123ABCD> · <!date^1700000000^{date_short_pretty} {time}|2023-11-14T22:13:20.000Z>',
  ]);
  assert.equal(message.text, 'step.approved: Approved: restart &lt;checkout&gt; pods');

  const fromBot = buildTimelineMessage({
    type: 'page.sent',
    actor: '<!channel>',
    at: OPENED_AT,
    text: 'paged',
  });
  assert.match(contextTexts(fromBot.blocks[1])[0] ?? '', /· &lt;!channel&gt; ·/);
});

test('an empty incident list says all quiet under the heading', () => {
  const message = buildIncidentList([], 'Open incidents · checkout-api');

  assert.equal(asType(message.blocks[0], 'header').text.text, 'Open incidents · checkout-api');
  assert.equal(
    textOf(asType(message.blocks[1], 'section').text),
    ':white_check_mark: All quiet: no open incidents',
  );
  assert.equal(message.text, 'Open incidents · checkout-api: All quiet: no open incidents');

  const untitled = buildIncidentList([], '  ');
  assert.equal(asType(untitled.blocks[0], 'header').text.text, 'Incidents', 'Slack rejects an empty header');
});

test('an incident list shows one line per incident', () => {
  const message = buildIncidentList(
    [
      buildView(),
      buildView({ id: '43', title: 'Queue lag', severity: 'warning', status: 'mitigating', alertCount: 1 }),
    ],
    'Open incidents',
  );

  assert.equal(message.blocks.length, 3);
  assert.equal(
    textOf(asType(message.blocks[2], 'section').text),
    '🟡 *INC-43* Queue lag — checkout-api · Mitigating · 1 alert · since <!date^1700000000^{date_short_pretty} {time}|2023-11-14T22:13:20.000Z>',
  );
  assert.equal(message.text, 'Open incidents: 2 incidents');
});

test('a long incident list is capped within 50 blocks with an "and N more" note', () => {
  const incidents = Array.from({ length: 120 }, (_, i) =>
    buildView({ id: String(i), title: 'T'.repeat(200) }),
  );
  const message = buildIncidentList(incidents, 'Open incidents');

  assert.ok(message.blocks.length <= 50);
  const shown = message.blocks.filter((block) => block.type === 'section').length;
  assert.ok(shown >= 20, `shows a useful number of incidents (${shown})`);
  assert.deepEqual(contextTexts(message.blocks.at(-1)), [`… and ${120 - shown} more`]);
  assert.ok(JSON.stringify(message.blocks).length < MAX_TOTAL_BLOCK_TEXT + 2000);

  const fortyNine = buildIncidentList(
    incidents.slice(0, 49).map((view) => ({ ...view, title: 'x' })),
    'Open',
  );
  assert.equal(fortyNine.blocks.length, 50, 'header plus 49 short lines fit without a note');
  assert.equal(fortyNine.blocks.at(-1)?.type, 'section');
});
