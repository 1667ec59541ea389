import { runInNewContext } from 'node:vm';

/**
 * The page's Block Kit and mrkdwn renderer, as browser JavaScript (no build step). It turns a message into a tree of
 * plain objects — `{ text }` for text, `{ tag, cls?, attrs?, kids?, act?, color? }` for elements — and `toDom` turns
 * a tree into DOM nodes with createElement / createTextNode / setAttribute only: data never reaches an HTML parser,
 * tags and attributes are allow-listed, and links and image sources are checked again there. The tree half is pure,
 * so tests run it in Node (see `loadRenderer`).
 *
 * Written as a String.raw literal: it holds no backtick and no dollar-brace, and writes the backtick as \x60.
 */
export const RENDER_SCRIPT = String.raw`
var SlackRender = (function () {
  'use strict';
  var EMOJI = {
    white_check_mark: '\u2705', heavy_check_mark: '\u2714\ufe0f', x: '\u274c', warning: '\u26a0\ufe0f',
    red_circle: '\ud83d\udd34', large_green_circle: '\ud83d\udfe2', large_yellow_circle: '\ud83d\udfe1',
    large_orange_circle: '\ud83d\udfe0', large_blue_circle: '\ud83d\udd35', white_circle: '\u26aa',
    black_circle: '\u26ab', hourglass: '\u231b', hourglass_flowing_sand: '\u23f3', mag: '\ud83d\udd0d',
    construction: '\ud83d\udea7', arrow_forward: '\u25b6\ufe0f', octagonal_sign: '\ud83d\uded1',
    rotating_light: '\ud83d\udea8', fire: '\ud83d\udd25', eyes: '\ud83d\udc40', tada: '\ud83c\udf89',
    thumbsup: '\ud83d\udc4d', '+1': '\ud83d\udc4d', thumbsdown: '\ud83d\udc4e', information_source: '\u2139\ufe0f',
    bell: '\ud83d\udd14', no_bell: '\ud83d\udd15', pager: '\ud83d\udcdf', robot_face: '\ud83e\udd16',
    chart_with_upwards_trend: '\ud83d\udcc8', chart_with_downwards_trend: '\ud83d\udcc9', stopwatch: '\u23f1\ufe0f',
    lock: '\ud83d\udd12', wrench: '\ud83d\udd27', rocket: '\ud83d\ude80', memo: '\ud83d\udcdd', link: '\ud83d\udd17',
    sos: '\ud83c\udd98', bulb: '\ud83d\udca1', skull: '\ud83d\udc80', zzz: '\ud83d\udca4', wave: '\ud83d\udc4b',
    speech_balloon: '\ud83d\udcac', no_entry: '\u26d4', heavy_plus_sign: '\u2795', arrows_counterclockwise: '\ud83d\udd04',
    rewind: '\u23ea', pause_button: '\u23f8\ufe0f', stop_button: '\u23f9\ufe0f', calendar: '\ud83d\udcc5'
  };
  var MARKS = { '*': 'b', '_': 'i', '~': 's' };
  var MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October',
    'November', 'December'];
  var DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
  var TAGS = { div: 1, span: 1, b: 1, i: 1, s: 1, code: 1, pre: 1, blockquote: 1, a: 1, br: 1, hr: 1, img: 1,
    button: 1, select: 1, option: 1, figure: 1, figcaption: 1, ul: 1, ol: 1, li: 1, small: 1, label: 1, input: 1,
    textarea: 1 };
  var ATTRS = { href: 1, src: 1, alt: 1, title: 1, target: 1, rel: 1, type: 1, value: 1, disabled: 1, selected: 1,
    role: 1, download: 1, id: 1, 'for': 1, placeholder: 1, maxlength: 1, rows: 1 };

  function own(o, k) { return Object.prototype.hasOwnProperty.call(o, k); }
  function t(text) { return { text: String(text) }; }
  function el(tag, cls, kids, attrs) {
    var n = { tag: tag, kids: kids || [] };
    if (cls) n.cls = cls;
    if (attrs) n.attrs = attrs;
    return n;
  }
  function str(v) { return typeof v === 'string' ? v : ''; }
  function decode(s) { return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&'); }
  function emojify(s) {
    return s.replace(/:([a-z0-9_+-]+):/g, function (m, name) { return own(EMOJI, name) ? EMOJI[name] : m; });
  }
  function nameOf(map, id) { return map && own(map, id) ? map[id] : id; }
  function isWordChar(c) { return c !== '' && /[A-Za-z0-9]/.test(c); }

  /** http(s) and mailto only; anything else (javascript:, data:, relative) is not a link */
  function safeHref(url) {
    return typeof url === 'string' && /^(https?:\/\/[^\s<>"]+|mailto:[^\s<>"]+)$/i.test(url) ? url : null;
  }
  /** the stand-in's own files and inline raster images only: the page loads nothing from elsewhere */
  function safeSrc(src, origin) {
    if (typeof src !== 'string') return null;
    if (/^\/files\/F[A-Za-z0-9]+$/.test(src)) return src;
    if (origin && src.indexOf(origin + '/files/') === 0 && /^\/files\/F[A-Za-z0-9]+$/.test(src.slice(origin.length)))
      return src;
    if (/^data:image\/(png|gif|jpeg|webp);base64,[A-Za-z0-9+\/=]+$/.test(src)) return src;
    return null;
  }

  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function ordinal(n) {
    var s = n % 100 >= 11 && n % 100 <= 13 ? 'th' : ['th', 'st', 'nd', 'rd'][n % 10] || 'th';
    return n + s;
  }
  function dayDiff(d, now) {
    var a = new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
    var b = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
    return Math.round((a - b) / 86400000);
  }
  /** Slack's <!date^unix^format|fallback>, in the reader's time zone */
  function formatDate(unix, format, fallback, now) {
    var secs = Number(unix);
    if (!unix || !isFinite(secs) || !format) return decode(fallback || unix || '');
    var d = new Date(secs * 1000);
    now = now || new Date();
    var long = MONTHS[d.getMonth()] + ' ' + ordinal(d.getDate()) + ', ' + d.getFullYear();
    var short = MONTHS[d.getMonth()].slice(0, 3) + ' ' + d.getDate() + ', ' + d.getFullYear();
    var diff = dayDiff(d, now);
    var pretty = function (plain) {
      return diff === 0 ? 'Today' : diff === -1 ? 'Yesterday' : diff === 1 ? 'Tomorrow' : plain;
    };
    var ago = Math.round((now.getTime() - d.getTime()) / 1000);
    var agoText = Math.abs(ago) < 60 ? 'just now'
      : Math.abs(ago) < 3600 ? Math.round(Math.abs(ago) / 60) + ' minutes'
      : Math.abs(ago) < 86400 ? Math.round(Math.abs(ago) / 3600) + ' hours'
      : Math.round(Math.abs(ago) / 86400) + ' days';
    if (agoText !== 'just now') agoText = ago >= 0 ? agoText + ' ago' : 'in ' + agoText;
    var map = {
      date_num: d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()),
      date: long,
      date_short: short,
      date_long: DAYS[d.getDay()] + ', ' + long,
      date_pretty: pretty(long),
      date_short_pretty: pretty(short),
      date_long_pretty: pretty(DAYS[d.getDay()] + ', ' + long),
      time: pad(d.getHours()) + ':' + pad(d.getMinutes()),
      time_secs: pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()),
      ago: agoText
    };
    return format.replace(/\{([a-z_]+)\}/g, function (m, k) { return own(map, k) ? map[k] : m; });
  }

  /** <...>: mentions, channels, special mentions, dates and links */
  function token(inner, ctx) {
    var bar = inner.indexOf('|');
    var target = bar >= 0 ? inner.slice(0, bar) : inner;
    var label = bar >= 0 ? inner.slice(bar + 1) : '';
    var first = target.charAt(0);
    if (first === '@') {
      var uid = target.slice(1);
      return el('span', 'sk-mention', [t('@' + (label ? decode(label) : nameOf(ctx.users, uid)))], { 'data-user': uid });
    }
    if (first === '#') {
      var cid = target.slice(1);
      return el('span', 'sk-channel-ref', [t('#' + (label ? decode(label) : nameOf(ctx.channels, cid)))],
        { 'data-channel': cid });
    }
    if (first === '!') {
      var parts = target.slice(1).split('^');
      var kind = parts[0];
      if (kind === 'here' || kind === 'channel' || kind === 'everyone')
        return el('span', 'sk-mention sk-broadcast', [t('@' + kind)]);
      if (kind === 'subteam') {
        var handle = label ? decode(label).replace(/^@/, '') : nameOf(ctx.groups, parts[1] || '');
        return el('span', 'sk-mention', [t('@' + handle)]);
      }
      if (kind === 'date')
        return el('span', 'sk-date', [t(formatDate(parts[1], parts[2], label, ctx.now))], { title: decode(label) });
      return t(decode(label || target));
    }
    var url = decode(target);
    var href = safeHref(url);
    var text = label ? decode(label) : url.replace(/^mailto:/i, '');
    if (!href) return t(text);
    return el('a', 'sk-link', [t(text)], { href: href, target: '_blank', rel: 'noopener noreferrer' });
  }

  function findClose(s, from, mark) {
    for (var j = from; j < s.length; j++) {
      var c = s.charAt(j);
      if (c === mark && j > from && !/\s/.test(s.charAt(j - 1)) && !isWordChar(s.charAt(j + 1))) return j;
      if (c === '<') { var e = s.indexOf('>', j); if (e > 0) j = e; }
      else if (c === '\x60') { var e2 = s.indexOf('\x60', j + 1); if (e2 > 0) j = e2; }
    }
    return -1;
  }

  /** one line of mrkdwn: tokens, inline code, *bold*, _italic_, ~strike~ (nested) */
  function inline(s, ctx) {
    var out = [];
    var buf = '';
    var i = 0;
    function flush() { if (buf) { out.push(t(emojify(decode(buf)))); buf = ''; } }
    while (i < s.length) {
      var c = s.charAt(i);
      if (c === '<') {
        var end = s.indexOf('>', i + 1);
        if (end > i + 1) { flush(); out.push(token(s.slice(i + 1, end), ctx)); i = end + 1; continue; }
      } else if (c === '\x60') {
        var close = s.indexOf('\x60', i + 1);
        if (close > i + 1) {
          flush();
          out.push(el('code', 'sk-code', [t(decode(s.slice(i + 1, close)))]));
          i = close + 1;
          continue;
        }
      } else if (own(MARKS, c) && !isWordChar(s.charAt(i - 1)) && s.charAt(i + 1) !== '' && !/\s/.test(s.charAt(i + 1))) {
        var j = findClose(s, i + 1, c);
        if (j > 0) {
          flush();
          out.push(el(MARKS[c], null, inline(s.slice(i + 1, j), ctx)));
          i = j + 1;
          continue;
        }
      }
      buf += c;
      i++;
    }
    flush();
    return out;
  }

  /** lines of mrkdwn outside code blocks: "> " lines become quotes, the rest are joined by line breaks */
  function lines(chunk, ctx) {
    var out = [];
    var parts = chunk.split('\n');
    var quote = null;
    for (var i = 0; i < parts.length; i++) {
      var line = parts[i];
      var q = /^(?:&gt;|>) ?/.exec(line);
      if (q) {
        if (!quote) { quote = el('blockquote', 'sk-quote', []); out.push(quote); }
        else quote.kids.push(el('br'));
        quote.kids = quote.kids.concat(inline(line.slice(q[0].length), ctx));
      } else {
        if (quote) quote = null;
        else if (i > 0) out.push(el('br'));
        out = out.concat(inline(line, ctx));
      }
    }
    return out;
  }

  /** Slack's mrkdwn as a tree; ctx: { users: {id: name}, channels: {id: name}, groups: {id: handle}, origin, now } */
  function mrkdwn(text, ctx) {
    ctx = ctx || {};
    var src = typeof text === 'string' ? text : '';
    var out = [];
    var re = /\x60\x60\x60([\s\S]*?)\x60\x60\x60/g;
    var last = 0;
    var m;
    while ((m = re.exec(src)) !== null) {
      if (m.index > last) out = out.concat(lines(src.slice(last, m.index).replace(/\n$/, ''), ctx));
      out.push(el('pre', 'sk-pre', [t(decode(m[1].replace(/^\n/, '')))]));
      last = re.lastIndex;
      if (src.charAt(last) === '\n') last++;
    }
    if (last < src.length) out = out.concat(lines(src.slice(last), ctx));
    return out;
  }

  function plain(obj) {
    if (!obj || typeof obj !== 'object') return t('');
    return t(obj.emoji === false ? str(obj.text) : emojify(str(obj.text)));
  }
  function textObject(obj, ctx) {
    if (!obj || typeof obj !== 'object') return [];
    return obj.type === 'mrkdwn' ? mrkdwn(str(obj.text), ctx) : [plain(obj)];
  }
  function unsupported(what) { return el('div', 'sk-unsupported', [t('[' + what + ' is not shown by the stand-in]')]); }

  function image(e, cls, ctx) {
    var src = safeSrc(e.image_url || (e.slack_file && e.slack_file.url), ctx.origin);
    var alt = str(e.alt_text) || 'image';
    if (src) return el('img', cls, [], { src: src, alt: alt, title: alt });
    // an image from elsewhere: named, not loaded (the page fetches nothing from the internet)
    return el('span', cls + ' sk-img-placeholder', [t('\ud83d\uddbc ' + alt)], { title: str(e.image_url) });
  }

  function confirmOf(c, ctx) {
    if (!c || typeof c !== 'object') return null;
    return {
      title: c.title ? str(c.title.text) : 'Are you sure?',
      text: textObject(c.text, ctx),
      confirm: c.confirm ? str(c.confirm.text) : 'Yes',
      deny: c.deny ? str(c.deny.text) : 'Cancel',
      style: c.style === 'danger' ? 'danger' : 'primary'
    };
  }

  function optionsOf(e) {
    var list = Array.isArray(e.options) ? e.options.slice() : [];
    if (Array.isArray(e.option_groups))
      e.option_groups.forEach(function (g) { if (g && Array.isArray(g.options)) list = list.concat(g.options); });
    return list.filter(function (o) { return o && typeof o === 'object'; });
  }

  /** an interactive element: buttons are real buttons, selects real selects */
  function element(e, ctx, blockId) {
    if (!e || typeof e !== 'object') return unsupported('an element');
    var common = { 'data-action-id': str(e.action_id), 'data-block-id': str(blockId) };
    if (e.type === 'button') {
      var style = e.style === 'primary' || e.style === 'danger' ? ' sk-' + e.style : '';
      var attrs = { type: 'button', 'data-action-id': common['data-action-id'], 'data-block-id': common['data-block-id'] };
      if (typeof e.value === 'string') attrs['data-value'] = e.value;
      var node = el('button', 'sk-button' + style, [plain(e.text)], attrs);
      node.act = { kind: 'button', actionId: str(e.action_id), value: typeof e.value === 'string' ? e.value : null,
        url: safeHref(e.url), confirm: confirmOf(e.confirm, ctx) };
      return node;
    }
    if (e.type === 'static_select' || e.type === 'overflow') {
      var placeholder = e.type === 'overflow' ? '\u22ef' : e.placeholder ? str(e.placeholder.text) : 'Select an item';
      var opts = [el('option', null, [t(placeholder)], { value: '', disabled: 'disabled', selected: 'selected' })];
      optionsOf(e).forEach(function (o) {
        opts.push(el('option', null, [plain(o.text)], { value: str(o.value) }));
      });
      var select = el('select', 'sk-select', opts, common);
      select.act = { kind: 'select', actionId: str(e.action_id), value: null, url: null, confirm: confirmOf(e.confirm, ctx) };
      return select;
    }
    if (e.type === 'image') return image(e, 'sk-accessory-img', ctx);
    return el('span', 'sk-unsupported', [t('[' + str(e.type) + ']')]);
  }

  function richInline(items, ctx) {
    var out = [];
    (Array.isArray(items) ? items : []).forEach(function (r) {
      if (!r || typeof r !== 'object') return;
      var node;
      if (r.type === 'text') {
        var pieces = str(r.text).split('\n');
        var kids = [];
        pieces.forEach(function (p, i) { if (i > 0) kids.push(el('br')); if (p) kids.push(t(p)); });
        node = el('span', null, kids);
      } else if (r.type === 'link') {
        var href = safeHref(r.url);
        var label = str(r.text) || str(r.url);
        node = href ? el('a', 'sk-link', [t(label)], { href: href, target: '_blank', rel: 'noopener noreferrer' }) : t(label);
      } else if (r.type === 'user') {
        node = el('span', 'sk-mention', [t('@' + nameOf(ctx.users, str(r.user_id)))], { 'data-user': str(r.user_id) });
      } else if (r.type === 'channel') {
        node = el('span', 'sk-channel-ref', [t('#' + nameOf(ctx.channels, str(r.channel_id)))]);
      } else if (r.type === 'usergroup') {
        node = el('span', 'sk-mention', [t('@' + nameOf(ctx.groups, str(r.usergroup_id)))]);
      } else if (r.type === 'broadcast') {
        node = el('span', 'sk-mention sk-broadcast', [t('@' + str(r.range))]);
      } else if (r.type === 'emoji') {
        var cps = str(r.unicode).split('-').map(function (h) { return parseInt(h, 16); })
          .filter(function (n) { return isFinite(n) && n > 0 && n <= 0x10ffff; });
        node = t(cps.length > 0 ? String.fromCodePoint.apply(null, cps) : emojify(':' + str(r.name) + ':'));
      } else if (r.type === 'date') {
        node = t(formatDate(String(r.timestamp), str(r.format), str(r.fallback), ctx.now));
      } else {
        node = t(str(r.text));
      }
      var s = r.style && typeof r.style === 'object' ? r.style : {};
      if (s.code) node = el('code', 'sk-code', [node]);
      if (s.strike) node = el('s', null, [node]);
      if (s.italic) node = el('i', null, [node]);
      if (s.bold) node = el('b', null, [node]);
      out.push(node);
    });
    return out;
  }

  function richText(elements, ctx) {
    var out = [];
    (Array.isArray(elements) ? elements : []).forEach(function (e) {
      if (!e || typeof e !== 'object') return;
      if (e.type === 'rich_text_section') out.push(el('div', 'sk-rich-section', richInline(e.elements, ctx)));
      else if (e.type === 'rich_text_preformatted') out.push(el('pre', 'sk-pre', richInline(e.elements, ctx)));
      else if (e.type === 'rich_text_quote') out.push(el('blockquote', 'sk-quote', richInline(e.elements, ctx)));
      else if (e.type === 'rich_text_list') {
        var items = (Array.isArray(e.elements) ? e.elements : []).map(function (s) {
          return el('li', null, richInline(s && s.elements, ctx));
        });
        out.push(el(e.style === 'ordered' ? 'ol' : 'ul', 'sk-list', items));
      }
    });
    return out;
  }

  function block(b, ctx) {
    if (!b || typeof b !== 'object') return unsupported('a block');
    var blockId = str(b.block_id);
    switch (b.type) {
      case 'header':
        return el('div', 'sk-block sk-header', [plain(b.text)]);
      case 'section': {
        var main = el('div', 'sk-section-main', []);
        if (b.text) main.kids.push(el('div', 'sk-section-text', textObject(b.text, ctx)));
        if (Array.isArray(b.fields))
          main.kids.push(el('div', 'sk-fields', b.fields.map(function (f) {
            return el('div', 'sk-field', textObject(f, ctx));
          })));
        var kids = [main];
        if (b.accessory) kids.push(el('div', 'sk-accessory', [element(b.accessory, ctx, blockId)]));
        return el('div', 'sk-block sk-section', kids);
      }
      case 'context':
        return el('div', 'sk-block sk-context', (Array.isArray(b.elements) ? b.elements : []).map(function (e) {
          if (e && e.type === 'image') return image(e, 'sk-context-img', ctx);
          return el('span', 'sk-context-item', textObject(e, ctx));
        }));
      case 'divider':
        return el('hr', 'sk-divider');
      case 'actions':
        return el('div', 'sk-block sk-actions', (Array.isArray(b.elements) ? b.elements : []).map(function (e) {
          return element(e, ctx, blockId);
        }));
      case 'image': {
        var fig = [];
        if (b.title) fig.push(el('figcaption', 'sk-image-title', [plain(b.title)]));
        fig.push(image(b, 'sk-image-img', ctx));
        return el('figure', 'sk-block sk-image', fig);
      }
      case 'rich_text':
        return el('div', 'sk-block sk-rich', richText(b.elements, ctx));
      case 'markdown':
        return el('div', 'sk-block sk-markdown', mrkdwn(str(b.text), ctx));
      default:
        return unsupported('a ' + str(b.type) + ' block');
    }
  }

  function blocks(list, ctx) {
    ctx = ctx || {};
    return (Array.isArray(list) ? list : []).map(function (b) { return block(b, ctx); });
  }

  /**
   * an input block: its label (marked when optional), a text input carrying the ids a submission is keyed by, and
   * its hint. Missing ids get the same stand-ins submitView uses (block-<i>, input-<i>).
   */
  function inputBlock(b, index, ctx) {
    var e = b.element && typeof b.element === 'object' ? b.element : {};
    var blockId = str(b.block_id) || 'block-' + index;
    var actionId = str(e.action_id) || 'input-' + index;
    var fieldId = 'sk-modal-field-' + index;
    var label = [plain(b.label)];
    if (b.optional === true) label.push(el('span', 'sk-optional', [t(' (optional)')]));
    var kids = [el('label', 'sk-input-label', label, { 'for': fieldId })];
    if (e.type === 'plain_text_input') {
      var attrs = { id: fieldId, 'data-testid': 'modal-input-' + actionId, 'data-action-id': actionId,
        'data-block-id': blockId };
      if (b.optional !== true) attrs['data-required'] = 'true';
      if (e.placeholder) attrs.placeholder = str(e.placeholder.text);
      if (typeof e.max_length === 'number' && e.max_length > 0) attrs.maxlength = String(e.max_length);
      var initial = str(e.initial_value);
      if (e.multiline === true) {
        attrs.rows = '4';
        kids.push(el('textarea', 'sk-input', initial ? [t(initial)] : [], attrs));
      } else {
        attrs.type = 'text';
        if (initial) attrs.value = initial;
        kids.push(el('input', 'sk-input', [], attrs));
      }
    } else {
      kids.push(unsupported('a ' + (str(e.type) || 'missing') + ' input'));
    }
    if (b.hint) kids.push(el('div', 'sk-hint', [plain(b.hint)]));
    return el('div', 'sk-block sk-input-block', kids, { 'data-block-id': blockId });
  }

  /**
   * a modal (views.open's view): its title, its blocks (input blocks as labelled text inputs, the rest as in a
   * message) and the texts of its buttons; submit is null when the modal has none (Slack shows only Close then)
   */
  function modal(view, ctx) {
    ctx = ctx || {};
    view = view && typeof view === 'object' ? view : {};
    var list = Array.isArray(view.blocks) ? view.blocks : [];
    var hasInput = false;
    var nodes = list.map(function (b, i) {
      if (!b || typeof b !== 'object' || b.type !== 'input') return block(b, ctx);
      hasInput = true;
      return inputBlock(b, i, ctx);
    });
    return {
      title: view.title ? plain(view.title).text : '',
      blocks: nodes,
      submit: view.submit ? plain(view.submit).text : hasInput ? 'Submit' : null,
      close: view.close ? plain(view.close).text : view.submit || hasInput ? 'Cancel' : 'Close'
    };
  }

  function size(bytes) {
    return bytes >= 1048576 ? (bytes / 1048576).toFixed(1) + ' MB'
      : bytes >= 1024 ? Math.round(bytes / 1024) + ' kB' : bytes + ' B';
  }

  function files(list, ctx) {
    return (Array.isArray(list) ? list : []).map(function (f) {
      var id = /^F[A-Za-z0-9]+$/.test(str(f && f.id)) ? f.id : null;
      var title = str(f && f.title) || str(f && f.name) || 'file';
      if (!id) return el('div', 'sk-file', [t('\ud83d\udcc4 ' + title)]);
      var src = '/files/' + id;
      if (/^image\/(png|jpeg|gif|webp)$/.test(str(f.mimetype)))
        return el('figure', 'sk-file sk-file-image', [
          el('figcaption', 'sk-file-title', [t(title)]),
          el('img', 'sk-file-img', [], { src: src, alt: title, title: title })
        ], { 'data-file': id });
      return el('div', 'sk-file', [
        el('a', 'sk-link', [t('\ud83d\udcc4 ' + title)], { href: src, download: str(f.name) || id }),
        el('small', null, [t(' ' + size(Number(f.size) || 0))])
      ], { 'data-file': id });
    });
  }

  var COLORS = { good: '#2eb67d', warning: '#ecb22e', danger: '#e01e5a' };
  function attachments(list, ctx) {
    return (Array.isArray(list) ? list : []).map(function (a) {
      a = a && typeof a === 'object' ? a : {};
      var kids = [];
      if (a.pretext) kids.push(el('div', 'sk-att-pretext', mrkdwn(str(a.pretext), ctx)));
      if (a.author_name) kids.push(el('div', 'sk-att-author', [t(str(a.author_name))]));
      if (a.title) {
        var href = safeHref(a.title_link);
        kids.push(el('div', 'sk-att-title', [href
          ? el('a', 'sk-link', [t(str(a.title))], { href: href, target: '_blank', rel: 'noopener noreferrer' })
          : t(str(a.title))]));
      }
      if (a.text) kids.push(el('div', 'sk-att-text', mrkdwn(str(a.text), ctx)));
      if (Array.isArray(a.fields))
        kids.push(el('div', 'sk-fields', a.fields.map(function (f) {
          f = f || {};
          return el('div', f.short ? 'sk-field' : 'sk-field sk-field-long',
            [el('b', null, [t(str(f.title))]), el('br')].concat(mrkdwn(str(f.value), ctx)));
        })));
      if (Array.isArray(a.blocks)) kids = kids.concat(blocks(a.blocks, ctx));
      if (a.footer) kids.push(el('div', 'sk-context', [t(str(a.footer))]));
      var node = el('div', 'sk-attachment', kids);
      var color = own(COLORS, a.color) ? COLORS[a.color] : str(a.color);
      if (/^#?[0-9a-fA-F]{6}$/.test(color)) node.color = color.charAt(0) === '#' ? color : '#' + color;
      return node;
    });
  }

  /** what a message shows: its blocks (else its text), then attachments and files */
  function body(msg, ctx) {
    ctx = ctx || {};
    var out = [];
    if (Array.isArray(msg.blocks) && msg.blocks.length > 0) out = out.concat(blocks(msg.blocks, ctx));
    else if (str(msg.text))
      out.push(el('div', 'sk-text', msg.mrkdwn === false ? [t(msg.text)] : mrkdwn(msg.text, ctx)));
    if (Array.isArray(msg.attachments)) out = out.concat(attachments(msg.attachments, ctx));
    if (Array.isArray(msg.files)) out = out.concat(files(msg.files, ctx));
    return out;
  }

  /** a tree as DOM nodes; onAct(act, element) runs when a button is clicked or a select changed */
  function toDom(node, doc, onAct, origin) {
    if (!node || typeof node !== 'object') return doc.createTextNode('');
    if (typeof node.tag !== 'string') return doc.createTextNode(typeof node.text === 'string' ? node.text : '');
    var e = doc.createElement(own(TAGS, node.tag) ? node.tag : 'span');
    if (typeof node.cls === 'string') e.className = node.cls;
    var attrs = node.attrs && typeof node.attrs === 'object' ? node.attrs : {};
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined) return;
      v = String(v);
      if (!own(ATTRS, k) && !/^data-[a-z-]+$/.test(k) && !/^aria-[a-z]+$/.test(k)) return;
      if (k === 'href' && !safeHref(v) && !/^\/files\/F[A-Za-z0-9]+$/.test(v)) return;
      if (k === 'src' && !safeSrc(v, origin)) return;
      e.setAttribute(k, v);
    });
    if (typeof node.color === 'string' && /^#[0-9a-fA-F]{6}$/.test(node.color)) e.style.borderLeftColor = node.color;
    (Array.isArray(node.kids) ? node.kids : []).forEach(function (kid) { e.appendChild(toDom(kid, doc, onAct, origin)); });
    if (node.act && onAct) {
      var act = node.act;
      e.addEventListener(act.kind === 'select' ? 'change' : 'click', function () { onAct(act, e); });
    }
    return e;
  }

  return { mrkdwn: mrkdwn, blocks: blocks, body: body, attachments: attachments, files: files, modal: modal,
    formatDate: formatDate, safeHref: safeHref, safeSrc: safeSrc, toDom: toDom, emojify: emojify };
})();
`;

/** A node of the renderer's tree. */
export type RenderNode =
  | { text: string }
  | {
      tag: string;
      cls?: string;
      attrs?: Record<string, string>;
      kids: RenderNode[];
      act?: Record<string, unknown>;
      color?: string;
    };

/** What the renderer needs to name things; `now` fixes "Today" in dates. */
export interface RenderContext {
  users?: Record<string, string>;
  channels?: Record<string, string>;
  groups?: Record<string, string>;
  /** the stand-in's origin, `http://127.0.0.1:<port>`: images from there are loaded */
  origin?: string;
  now?: Date;
}

/** A modal as the renderer lays it out; `submit` is null when the modal has no submit button. */
export interface RenderedModal {
  title: string;
  blocks: RenderNode[];
  submit: string | null;
  close: string;
}

/** The renderer's functions, as the page has them. */
export interface SlackRenderer {
  mrkdwn(text: string, ctx?: RenderContext): RenderNode[];
  blocks(blocks: unknown[], ctx?: RenderContext): RenderNode[];
  body(message: Record<string, unknown>, ctx?: RenderContext): RenderNode[];
  /** a views.open view: title, blocks (input blocks as text inputs) and button texts */
  modal(view: Record<string, unknown>, ctx?: RenderContext): RenderedModal;
  formatDate(unix: string, format: string, fallback: string, now?: Date): string;
  safeHref(url: string): string | null;
  safeSrc(src: string, origin?: string): string | null;
  /** builds DOM nodes with `doc`'s createElement / createTextNode / setAttribute / appendChild only */
  toDom(
    node: RenderNode,
    doc: unknown,
    onAct?: (act: Record<string, unknown>, element: unknown) => void,
  ): unknown;
}

/** Runs the page's renderer in a fresh Node context, for tests: the same code the browser runs. */
export function loadRenderer(): SlackRenderer {
  return runInNewContext(`${RENDER_SCRIPT}\nSlackRender`, {}) as SlackRenderer;
}
