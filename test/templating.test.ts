import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  checkArgument,
  escapeQueryString,
  escapeRegExp,
  escapeUrlComponent,
  renderTemplate,
  type TemplateVars,
} from '../src/diagnostics/templating.js';

const vars: TemplateVars = {
  labels: {
    service: 'payment-service',
    job: 'a"} or vector(1) #',
    pod: '$(rm -rf /)',
    quote: "O'Brien",
    flag: '-rf',
  },
  annotations: { summary: 'p99 high' },
  incident: { id: '42', service: 'payment-service' },
  service: { health_url: 'http://127.0.0.1:8080/health' },
};

describe('templating: explicit placeholders, escaped for where they land', () => {
  test('values are looked up under labels, annotations, incident and service', () => {
    assert.equal(
      renderTemplate(
        '{{labels.service}}/{{incident.id}}/{{ annotations.summary }}/{{service.health_url}}',
        vars,
        (v) => v,
      ),
      'payment-service/42/p99 high/http://127.0.0.1:8080/health',
    );
  });

  test('a missing label fails loudly, naming it', () => {
    assert.throws(
      () => renderTemplate('up{pod="{{labels.nope}}"}', vars, escapeQueryString),
      /\{\{labels\.nope\}\}: the incident has no label "nope"/,
    );
  });

  test('an unknown root fails loudly', () => {
    assert.throws(() => renderTemplate('{{env.HOME}}', vars, (v) => v), /not one of labels/);
  });

  test('inside a PromQL string a hostile value stays inside its quotes', () => {
    const q = renderTemplate('up{job="{{labels.job}}"}', vars, escapeQueryString);
    assert.equal(q, 'up{job="a\\"} or vector(1) #"}');
  });

  test('a quote that could end a single-quoted literal is refused, not guessed at', () => {
    assert.throws(
      () => renderTemplate("up{x='{{labels.quote}}'}", vars, escapeQueryString),
      /contains a quote/,
    );
  });

  test('URLs get encoded components; regexes match the value literally', () => {
    assert.equal(
      renderTemplate('http://h/{{labels.job}}', vars, escapeUrlComponent),
      'http://h/a%22%7D%20or%20vector(1)%20%23',
    );
    const re = new RegExp(renderTemplate('{{labels.pod}}', vars, escapeRegExp));
    assert.ok(re.test('$(rm -rf /)'));
    assert.ok(!re.test('rm -rf /'));
  });

  test('an argv value is passed verbatim, but one that would read as an option is refused', () => {
    assert.equal(renderTemplate('{{labels.pod}}', vars, checkArgument), '$(rm -rf /)');
    assert.throws(() => renderTemplate('{{labels.flag}}', vars, checkArgument), /starts with "-"/);
  });
});
