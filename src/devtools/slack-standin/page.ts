import { createHash } from 'node:crypto';
import { RENDER_SCRIPT } from './render-script.js';

const STYLE = `
* { box-sizing: border-box; }
html, body { height: 100%; margin: 0; }
body { font: 15px/1.46668 -apple-system, BlinkMacSystemFont, "Segoe UI", Lato, "Helvetica Neue", Arial, sans-serif;
  color: #1d1c1d; background: #fff; }
button, select, textarea { font: inherit; }
.sk-app { display: grid; grid-template-columns: 260px 1fr auto; grid-template-rows: 100%; height: 100vh; }
.sk-sidebar { background: #3f0e40; color: #cfc3cf; display: flex; flex-direction: column; overflow-y: auto; }
.sk-team { color: #fff; font-weight: 900; font-size: 18px; padding: 14px 16px 10px;
  border-bottom: 1px solid #522653; }
.sk-side-section { padding: 10px 0 4px; }
.sk-side-title { padding: 0 16px 4px; font-size: 13px; opacity: .8; }
.sk-chan { display: flex; width: 100%; text-align: left; background: none; border: 0; color: #cfc3cf;
  padding: 4px 16px 4px 26px; cursor: pointer; font-size: 15px; align-items: center; gap: 6px; }
.sk-chan:hover { background: #350d36; }
.sk-chan.sk-active { background: #1164a3; color: #fff; }
.sk-chan.sk-unread { color: #fff; font-weight: 900; }
.sk-badge { margin-left: auto; background: #cd2553; color: #fff; border-radius: 9px; font-size: 12px;
  padding: 0 7px; font-weight: 700; }
.sk-me { padding: 10px 16px; border-top: 1px solid #522653; margin-top: auto; font-size: 13px; }
.sk-me select { width: 100%; margin-top: 4px; padding: 4px; border-radius: 4px; }
.sk-me .sk-groups { margin-top: 4px; opacity: .85; }
.sk-status { padding: 6px 16px 12px; font-size: 12px; }
.sk-dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; background: #aaa; margin-right: 6px; }
.sk-dot.sk-on { background: #2bac76; }
.sk-dot.sk-off { background: #e01e5a; }
.sk-main, .sk-thread { display: flex; flex-direction: column; min-width: 0; height: 100vh; }
.sk-thread { width: 420px; border-left: 1px solid #ddd; }
.sk-thread[hidden] { display: none; }
.sk-head { padding: 12px 20px; border-bottom: 1px solid #ddd; font-weight: 900; font-size: 18px; display: flex;
  align-items: center; gap: 8px; min-height: 50px; }
.sk-head small { font-weight: 400; color: #616061; font-size: 13px; }
.sk-close { margin-left: auto; background: none; border: 0; font-size: 20px; cursor: pointer; color: #616061; }
.sk-list { flex: 1; overflow-y: auto; padding: 8px 0 16px; }
.sk-empty { color: #616061; padding: 24px 20px; }
.sk-msg { display: flex; gap: 8px; padding: 8px 20px; position: relative; }
.sk-msg:hover { background: #f8f8f8; }
.sk-msg.sk-ephemeral { background: #f8f8f8; }
.sk-avatar { width: 36px; height: 36px; border-radius: 4px; flex: none; display: flex; align-items: center;
  justify-content: center; color: #fff; font-weight: 900; font-size: 16px; }
.sk-msg-main { min-width: 0; flex: 1; }
.sk-msg-head { display: flex; align-items: baseline; gap: 6px; flex-wrap: wrap; }
.sk-name { font-weight: 900; }
.sk-app-badge { background: #e8e8e8; color: #616061; font-size: 10px; font-weight: 700; padding: 0 3px;
  border-radius: 2px; }
.sk-time, .sk-edited { color: #616061; font-size: 12px; }
.sk-only-you { color: #616061; font-size: 13px; margin-bottom: 2px; }
.sk-broadcast-note { color: #616061; font-size: 13px; }
.sk-deleted { color: #616061; font-style: italic; }
.sk-text, .sk-section-text, .sk-field, .sk-rich-section { white-space: pre-wrap; word-wrap: break-word; }
.sk-block { margin: 4px 0; }
.sk-header { font-weight: 900; font-size: 18px; margin: 6px 0 4px; }
.sk-section { display: flex; gap: 12px; align-items: flex-start; }
.sk-section-main { flex: 1; min-width: 0; }
.sk-fields { display: grid; grid-template-columns: 1fr 1fr; gap: 8px 16px; margin-top: 4px; }
.sk-field-long { grid-column: 1 / -1; }
.sk-accessory { flex: none; }
.sk-accessory-img { width: 88px; height: 88px; object-fit: cover; border-radius: 6px; }
.sk-context { display: flex; flex-wrap: wrap; gap: 4px 8px; align-items: center; color: #616061; font-size: 12px; }
.sk-context-img { width: 20px; height: 20px; border-radius: 4px; }
.sk-divider { border: 0; border-top: 1px solid #ddd; margin: 8px 0; }
.sk-actions { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 8px; }
.sk-button { border: 1px solid #bbb; background: #fff; color: #1d1c1d; border-radius: 4px; padding: 3px 12px;
  font-weight: 700; font-size: 14px; cursor: pointer; min-height: 30px; }
.sk-button:hover { background: #f8f8f8; }
.sk-button.sk-primary { background: #007a5a; border-color: #007a5a; color: #fff; }
.sk-button.sk-primary:hover { background: #148567; }
.sk-button.sk-danger { background: #fff; border-color: #e01e5a; color: #e01e5a; }
.sk-button.sk-danger:hover { background: #e01e5a; color: #fff; }
.sk-button:disabled { opacity: .5; cursor: progress; }
.sk-select { padding: 4px 8px; border-radius: 4px; border: 1px solid #bbb; background: #fff; min-height: 30px; }
.sk-image { margin: 6px 0; }
.sk-image-title, .sk-file-title { font-size: 13px; color: #616061; margin-bottom: 4px; }
.sk-image-img, .sk-file-img { max-width: 100%; max-height: 360px; border-radius: 6px; border: 1px solid #ddd; }
.sk-file { margin: 6px 0; }
.sk-img-placeholder { display: inline-block; color: #616061; font-size: 13px; border: 1px dashed #bbb;
  border-radius: 4px; padding: 2px 6px; }
.sk-code { font-family: Monaco, Menlo, Consolas, "Courier New", monospace; font-size: 12px; color: #e01e5a;
  background: #f6f6f6; border: 1px solid #e1e1e1; border-radius: 3px; padding: 1px 3px; }
.sk-pre { font-family: Monaco, Menlo, Consolas, "Courier New", monospace; font-size: 12px; background: #f8f8f8;
  border: 1px solid #e1e1e1; border-radius: 4px; padding: 8px; margin: 4px 0; white-space: pre-wrap; }
.sk-pre .sk-code { border: 0; padding: 0; background: none; }
.sk-quote { border-left: 4px solid #ddd; margin: 4px 0; padding-left: 10px; }
.sk-mention { color: #1264a3; background: #e8f5fa; border-radius: 3px; padding: 0 2px; }
.sk-broadcast { color: #8f5b00; background: #fff3d6; }
.sk-channel-ref { color: #1264a3; }
.sk-link { color: #1264a3; text-decoration: none; }
.sk-link:hover { text-decoration: underline; }
.sk-date { border-bottom: 1px dotted #888; }
.sk-list ul, .sk-list ol { margin: 2px 0; }
.sk-attachment { border-left: 4px solid #ddd; padding: 2px 0 2px 12px; margin: 6px 0; }
.sk-att-title { font-weight: 700; }
.sk-unsupported { color: #616061; font-size: 12px; font-style: italic; }
.sk-reactions { display: flex; gap: 4px; margin-top: 4px; }
.sk-reaction { border: 1px solid #ddd; border-radius: 12px; padding: 0 8px; font-size: 12px; background: #f8f8f8; }
.sk-replies { background: none; border: 0; color: #1264a3; font-weight: 700; font-size: 13px; cursor: pointer;
  padding: 2px 0; margin-top: 2px; }
.sk-replies:hover { text-decoration: underline; }
.sk-hover { position: absolute; right: 20px; top: -10px; display: none; }
.sk-msg:hover .sk-hover { display: block; }
.sk-hover button { background: #fff; border: 1px solid #ddd; border-radius: 6px; font-size: 12px; padding: 2px 8px;
  cursor: pointer; }
.sk-thread-sep { color: #616061; font-size: 13px; padding: 6px 20px; border-bottom: 1px solid #eee; }
.sk-composer { padding: 0 20px 18px; }
.sk-composer form { border: 1px solid #bbb; border-radius: 8px; display: flex; flex-direction: column; }
.sk-composer textarea { border: 0; resize: none; padding: 10px 12px; min-height: 44px; outline: none;
  border-radius: 8px; }
.sk-composer .sk-compose-bar { display: flex; align-items: center; padding: 4px 8px; gap: 8px;
  border-top: 1px solid #eee; color: #616061; font-size: 12px; }
.sk-send { margin-left: auto; background: #007a5a; color: #fff; border: 0; border-radius: 4px; padding: 3px 12px;
  font-weight: 700; cursor: pointer; }
.sk-notices { position: fixed; right: 16px; bottom: 16px; display: flex; flex-direction: column; gap: 8px;
  max-width: 460px; z-index: 20; }
.sk-notice { background: #fff; border: 1px solid #ddd; border-left: 5px solid #1264a3; border-radius: 6px;
  padding: 10px 34px 10px 12px; box-shadow: 0 4px 12px rgba(0,0,0,.12); font-size: 14px; position: relative;
  white-space: pre-wrap; word-wrap: break-word; }
.sk-notice.sk-error { border-left-color: #e01e5a; }
.sk-notice.sk-warning { border-left-color: #ecb22e; }
.sk-notice button { position: absolute; top: 6px; right: 8px; background: none; border: 0; cursor: pointer;
  font-size: 16px; color: #616061; }
.sk-modal-back { position: fixed; inset: 0; background: rgba(0,0,0,.45); display: flex; align-items: center;
  justify-content: center; z-index: 30; }
.sk-modal { background: #fff; border-radius: 8px; width: 480px; max-width: 92vw; padding: 20px 24px;
  box-shadow: 0 18px 48px rgba(0,0,0,.35); }
.sk-modal h2 { margin: 0 0 12px; font-size: 22px; }
.sk-modal-buttons { display: flex; justify-content: flex-end; gap: 8px; margin-top: 20px; }
.sk-view { width: 520px; padding: 0; display: flex; flex-direction: column; max-height: 88vh; }
.sk-view h2 { padding: 18px 24px 14px; margin: 0; border-bottom: 1px solid #ddd; }
.sk-view-body { padding: 12px 24px; overflow-y: auto; }
.sk-view .sk-modal-buttons { padding: 14px 24px; margin: 0; border-top: 1px solid #ddd; }
.sk-input-block { margin: 12px 0 16px; }
.sk-input-label { display: block; font-weight: 700; margin-bottom: 6px; }
.sk-optional { font-weight: 400; color: #616061; }
.sk-input { display: block; width: 100%; border: 1px solid #bbb; border-radius: 4px; padding: 8px 10px;
  font: inherit; resize: vertical; }
.sk-input:focus { outline: none; border-color: #1264a3; box-shadow: 0 0 0 1px #1264a3; }
.sk-input-block.sk-invalid .sk-input { border-color: #e01e5a; }
.sk-hint { color: #616061; font-size: 13px; margin-top: 4px; }
.sk-field-error { color: #e01e5a; font-size: 13px; margin-top: 4px; }
`;

/** The page's own code: state from /ui/state, live changes from /ui/stream, actions to /ui/*. Same rules as the renderer. */
const APP_SCRIPT = String.raw`
(function () {
  'use strict';
  var R = window.SlackRender;
  var S = {
    me: localStorage.getItem('standin.me') || '',
    users: [], usergroups: [], channels: [], messages: new Map(),
    channel: null, thread: null, botConnected: false, live: false, resync: false, unread: {},
    /** modals open for me, oldest first; the newest is shown, as Slack stacks them */
    views: []
  };
  /** the modal on screen: { id, back, dialog, general, onKey } */
  var shown = null;
  var stream = null;
  var q = function (id) { return document.getElementById(id); };

  function h(tag, cls, kids, attrs) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    Object.keys(attrs || {}).forEach(function (k) { if (attrs[k] !== undefined) e.setAttribute(k, attrs[k]); });
    (kids || []).forEach(function (k) {
      if (k === null || k === undefined) return;
      e.appendChild(typeof k === 'string' ? document.createTextNode(k) : k);
    });
    return e;
  }
  function key(m) { return m.channel + '/' + m.ts; }
  function str(v) { return typeof v === 'string' ? v : ''; }
  function cmpTs(a, b) {
    var x = a.split('.'), y = b.split('.');
    return (Number(x[0]) - Number(y[0])) || (Number((x[1] || '').padEnd(6, '0')) - Number((y[1] || '').padEnd(6, '0')));
  }
  function userName(id) {
    var u = S.users.find(function (x) { return x.id === id; });
    return u ? u.name : id;
  }
  function channelById(id) { return S.channels.find(function (c) { return c.id === id; }) || null; }
  function ctx() {
    var users = {}, channels = {}, groups = {};
    S.users.forEach(function (u) { users[u.id] = u.name; });
    S.channels.forEach(function (c) { channels[c.id] = c.name; });
    S.usergroups.forEach(function (g) { groups[g.id] = g.handle; });
    return { users: users, channels: channels, groups: groups, origin: location.origin };
  }

  function notice(level, text) {
    var box = h('div', 'sk-notice sk-' + level, [text], { 'data-testid': 'notice', role: 'alert', 'data-level': level });
    var close = h('button', null, ['\u00d7'], { type: 'button', 'aria-label': 'Dismiss' });
    close.addEventListener('click', function () { box.remove(); });
    box.appendChild(close);
    q('notices').appendChild(box);
    setTimeout(function () { box.remove(); }, level === 'error' ? 30000 : 12000);
  }

  function post(path, body) {
    return fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      .then(function (res) {
        return res.text().then(function (text) {
          var json = {};
          try { json = text ? JSON.parse(text) : {}; } catch (e) { json = { message: text }; }
          return { status: res.status, json: json };
        });
      });
  }
  /** failures of the stand-in itself; the bot's own failures arrive as notices on the stream */
  function reportFailure(res) {
    if (res.status !== 200) {
      notice('error', res.json.message || res.json.error || ('HTTP ' + res.status));
    } else if (!S.live && res.json.bot && (res.json.bot.status < 200 || res.json.bot.status > 299)) {
      notice('error', 'The bot answered HTTP ' + res.json.bot.status + ' ' + (res.json.bot.error || res.json.bot.body || ''));
    }
  }

  function load() {
    return fetch('/ui/state?as=' + encodeURIComponent(S.me)).then(function (r) { return r.json(); }).then(function (st) {
      S.users = st.users; S.usergroups = st.usergroups; S.channels = st.channels; S.botConnected = st.botConnected;
      S.bot = st.bot;
      if (!S.users.some(function (u) { return u.id === S.me && !u.isBot; })) {
        var firstUser = S.users.find(function (u) { return !u.isBot; });
        S.me = firstUser ? firstUser.id : '';
      }
      S.messages = new Map();
      st.messages.forEach(function (m) { S.messages.set(key(m), m); });
      S.views = Array.isArray(st.views) ? st.views : [];
      fromHash();
      if (!S.channel || !channelById(S.channel)) S.channel = S.channels.length ? S.channels[0].id : null;
      renderAll();
      renderModal(false);
    });
  }

  function connect() {
    if (stream) stream.close();
    stream = new EventSource('/ui/stream?as=' + encodeURIComponent(S.me));
    stream.onopen = function () {
      S.live = true;
      renderStatus();
      if (S.resync) { S.resync = false; load(); }
    };
    stream.onerror = function () {
      S.live = false;
      S.resync = true;
      renderStatus();
      // the browser retries by itself unless the stream was refused outright
      if (stream.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
    };
    stream.addEventListener('message', function (ev) {
      var m = JSON.parse(ev.data).message;
      var isNew = !S.messages.has(key(m));
      S.messages.set(key(m), m);
      if (isNew && m.channel !== S.channel && (!m.threadTs || m.replyBroadcast)) S.unread[m.channel] = (S.unread[m.channel] || 0) + 1;
      renderAll();
    });
    stream.addEventListener('deleted', function (ev) {
      var d = JSON.parse(ev.data);
      S.messages.delete(d.channel + '/' + d.ts);
      renderAll();
    });
    stream.addEventListener('channel', function (ev) {
      var c = JSON.parse(ev.data).channel;
      if (!channelById(c.id)) S.channels.push(c);
      renderSidebar();
    });
    stream.addEventListener('user', function (ev) {
      var u = JSON.parse(ev.data).user;
      if (!S.users.some(function (x) { return x.id === u.id; })) S.users.push(u);
      renderSidebar();
    });
    stream.addEventListener('bot', function (ev) {
      var b = JSON.parse(ev.data);
      S.botConnected = b.connected;
      if (b.url) S.bot = { url: b.url };
      renderStatus();
    });
    stream.addEventListener('view', function (ev) {
      var v = JSON.parse(ev.data).view;
      var i = S.views.findIndex(function (x) { return x.id === v.id; });
      if (i >= 0) S.views[i] = v; else S.views.push(v);
      // the bot replaced the modal on screen (response_action update): redraw it
      renderModal(!!shown && shown.id === v.id);
    });
    stream.addEventListener('view-closed', function (ev) {
      dropView(JSON.parse(ev.data).id);
    });
    stream.addEventListener('notice', function (ev) {
      var n = JSON.parse(ev.data);
      notice(n.level, n.text);
    });
  }

  function fromHash() {
    var parts = decodeURIComponent(location.hash.replace(/^#\/?/, '')).split('/');
    var c = parts[0] && (channelById(parts[0]) || S.channels.find(function (x) { return x.name === parts[0]; }));
    if (c) { S.channel = c.id; S.thread = parts[1] || null; }
  }
  function toHash() {
    var h2 = '#' + (S.channel || '') + (S.thread ? '/' + S.thread : '');
    if (location.hash !== h2) history.replaceState(null, '', h2);
  }

  function selectChannel(id) {
    S.channel = id;
    stick.messages = true;
    S.unread[id] = 0;
    if (S.thread) {
      var root = S.messages.get(id + '/' + S.thread);
      if (!root) S.thread = null;
    }
    renderAll();
    q('composer').focus();
  }
  function openThread(ts) {
    S.thread = ts;
    stick['thread-messages'] = true;
    renderAll();
    q('thread-composer').focus();
  }

  function renderSidebar() {
    var list = q('channels');
    list.replaceChildren();
    S.channels.forEach(function (c) {
      var unread = S.unread[c.id] || 0;
      var b = h('button', 'sk-chan' + (c.id === S.channel ? ' sk-active' : '') + (unread ? ' sk-unread' : ''),
        [(c.id.charAt(0) === 'D' ? '@ ' : '# ') + c.name, unread ? h('span', 'sk-badge', [String(unread)]) : null],
        { type: 'button', 'data-testid': 'channel', 'data-channel': c.id });
      b.addEventListener('click', function () { selectChannel(c.id); });
      list.appendChild(b);
    });
    var sel = q('me');
    var people = S.users.filter(function (u) { return !u.isBot; });
    // rebuilt only when the people change, so an open dropdown is not closed by every new message
    var peopleKey = people.map(function (u) { return u.id + ':' + u.name; }).join(',') + '|' + S.me;
    if (sel.getAttribute('data-people') !== peopleKey) {
      sel.replaceChildren();
      people.forEach(function (u) {
        var o = h('option', null, [u.name + ' (' + u.id + ')'], { value: u.id });
        if (u.id === S.me) o.selected = true;
        sel.appendChild(o);
      });
      sel.setAttribute('data-people', peopleKey);
    }
    var groups = S.usergroups.filter(function (g) { return g.users.indexOf(S.me) >= 0; })
      .map(function (g) { return '@' + g.handle; });
    q('groups').textContent = groups.length ? 'member of ' + groups.join(', ') : '';
    renderStatus();
  }

  function renderStatus() {
    var live = q('live');
    live.replaceChildren(h('span', 'sk-dot ' + (S.live ? 'sk-on' : 'sk-off')), S.live ? 'live' : 'reconnecting\u2026');
    var bot = q('bot');
    bot.replaceChildren(h('span', 'sk-dot ' + (S.botConnected ? 'sk-on' : 'sk-off')),
      S.botConnected ? 'bot connected' + (S.bot && S.bot.url ? ' (' + S.bot.url + ')' : '') : 'no bot connected');
    bot.setAttribute('data-connected', S.botConnected ? 'true' : 'false');
  }

  function avatar(m) {
    var isBot = !!m.botId;
    var name = m.username || userName(m.user);
    var colors = ['#e8912d', '#2eb67d', '#36c5f0', '#ecb22e', '#4a154b', '#1264a3', '#e01e5a'];
    var sum = 0;
    for (var i = 0; i < m.user.length; i++) sum += m.user.charCodeAt(i);
    var a = h('div', 'sk-avatar', [m.user === 'USLACKBOT' ? '\ud83d\udcac' : isBot ? '\ud83e\udd16' : name.charAt(0).toUpperCase()]);
    a.style.background = isBot ? '#611f69' : colors[sum % colors.length];
    return a;
  }

  function timeOf(m) {
    var d = new Date(m.at);
    return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
  }

  function repliesOf(channel, ts, withEphemeral) {
    var out = [];
    S.messages.forEach(function (m) { if (m.channel === channel && m.threadTs === ts) out.push(m); });
    if (!withEphemeral) out = out.filter(function (m) { return !m.ephemeralTo; });
    return out.sort(function (a, b) { return cmpTs(a.ts, b.ts); });
  }

  function messageEl(m, inThread) {
    var attrs = { 'data-testid': 'message', 'data-ts': m.ts, 'data-channel': m.channel, 'data-user': m.user };
    if (m.threadTs) attrs['data-thread-ts'] = m.threadTs;
    if (m.ephemeralTo) attrs['data-ephemeral'] = 'true';
    var main = h('div', 'sk-msg-main');
    var head = h('div', 'sk-msg-head', [
      h('span', 'sk-name', [m.username || userName(m.user)]),
      m.botId ? h('span', 'sk-app-badge', ['APP']) : null,
      h('span', 'sk-time', [timeOf(m)], { title: new Date(m.at).toString() + ' \u00b7 ts ' + m.ts }),
      m.edited ? h('span', 'sk-edited', ['(edited)'], { 'data-testid': 'edited' }) : null
    ]);
    main.appendChild(head);
    if (m.ephemeralTo) main.appendChild(h('div', 'sk-only-you', ['\ud83d\udc41 Only visible to you']));
    if (m.threadTs && m.replyBroadcast && !inThread) main.appendChild(h('div', 'sk-broadcast-note', ['replied to a thread']));
    var onAct = function (act, elem) { doAction(m, act, elem); };
    var c = ctx();
    R.body(m, c).forEach(function (node) { main.appendChild(R.toDom(node, document, onAct, c.origin)); });
    if (m.reactions && m.reactions.length) {
      main.appendChild(h('div', 'sk-reactions', m.reactions.map(function (r) {
        return h('span', 'sk-reaction', [R.emojify(':' + r.name + ':') + ' ' + r.users.length], { title: r.users.map(userName).join(', ') });
      })));
    }
    if (!inThread && !m.threadTs) {
      var replies = repliesOf(m.channel, m.ts);
      if (replies.length) {
        var link = h('button', 'sk-replies', [replies.length + (replies.length === 1 ? ' reply' : ' replies')],
          { type: 'button', 'data-testid': 'replies' });
        link.addEventListener('click', function () { openThread(m.ts); });
        main.appendChild(link);
      }
    }
    var el = h('div', 'sk-msg' + (m.ephemeralTo ? ' sk-ephemeral' : ''), [avatar(m), main], attrs);
    if (!inThread && !m.threadTs && !m.ephemeralTo) {
      var reply = h('button', null, ['\ud83d\udcac Reply in thread'], { type: 'button', 'data-testid': 'reply-in-thread' });
      reply.addEventListener('click', function () { openThread(m.ts); });
      el.appendChild(h('div', 'sk-hover', [reply]));
    }
    return el;
  }

  function deletedRoot(channel, ts, inThread) {
    var main = h('div', 'sk-msg-main', [h('div', 'sk-deleted', ['This message was deleted.'])]);
    if (!inThread) {
      var n = repliesOf(channel, ts).length;
      var link = h('button', 'sk-replies', [n + (n === 1 ? ' reply' : ' replies')], { type: 'button', 'data-testid': 'replies' });
      link.addEventListener('click', function () { openThread(ts); });
      main.appendChild(link);
    }
    return h('div', 'sk-msg', [h('div', 'sk-avatar'), main], { 'data-testid': 'deleted', 'data-ts': ts, 'data-channel': channel });
  }

  /** a list follows new messages while it is scrolled to the bottom (as a chat does), and stays put otherwise */
  var stick = {};
  function keepScroll(list, fill) {
    if (!(list.id in stick)) {
      stick[list.id] = true;
      list.addEventListener('scroll', function () {
        stick[list.id] = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
      });
    }
    var top = list.scrollTop;
    fill();
    var follow = function () { if (stick[list.id]) list.scrollTop = list.scrollHeight; };
    if (stick[list.id]) follow(); else list.scrollTop = top;
    list.querySelectorAll('img').forEach(function (img) { if (!img.complete) img.addEventListener('load', follow); });
  }

  function renderMessages() {
    var c = channelById(S.channel);
    q('channel-name').textContent = c ? (c.id.charAt(0) === 'D' ? '@' : '#') + c.name : '';
    q('channel-id').textContent = c ? c.id : '';
    q('composer').setAttribute('placeholder', c ? 'Message #' + c.name + ' \u2014 /incident \u2026, @ai-sre \u2026 or text' : '');
    var list = q('messages');
    keepScroll(list, function () {
      list.replaceChildren();
      var rows = [];
      var roots = {};
      S.messages.forEach(function (m) {
        if (m.channel !== S.channel) return;
        if (!m.threadTs) { roots[m.ts] = true; rows.push(m); }
        else if (m.replyBroadcast) rows.push(m);
      });
      var orphans = {};
      S.messages.forEach(function (m) {
        if (m.channel === S.channel && m.threadTs && !roots[m.threadTs] && !S.messages.has(m.channel + '/' + m.threadTs))
          orphans[m.threadTs] = true;
      });
      Object.keys(orphans).forEach(function (ts) { rows.push({ orphan: true, ts: ts, channel: S.channel }); });
      rows.sort(function (a, b) { return cmpTs(a.ts, b.ts); });
      if (!rows.length) list.appendChild(h('div', 'sk-empty', ['No messages yet.']));
      rows.forEach(function (m) { list.appendChild(m.orphan ? deletedRoot(m.channel, m.ts, false) : messageEl(m, false)); });
    });
  }

  function renderThread() {
    var pane = q('thread');
    if (!S.thread || !S.channel) { pane.hidden = true; return; }
    pane.hidden = false;
    var c = channelById(S.channel);
    q('thread-where').textContent = c ? '#' + c.name : '';
    var list = q('thread-messages');
    keepScroll(list, function () {
      list.replaceChildren();
      var root = S.messages.get(S.channel + '/' + S.thread);
      list.appendChild(root ? messageEl(root, true) : deletedRoot(S.channel, S.thread, true));
      var replies = repliesOf(S.channel, S.thread, true);
      list.appendChild(h('div', 'sk-thread-sep', [replies.length + (replies.length === 1 ? ' reply' : ' replies')]));
      replies.forEach(function (m) { list.appendChild(messageEl(m, true)); });
    });
    pane.setAttribute('data-thread-ts', S.thread);
  }

  function renderAll() {
    if (S.channel) S.unread[S.channel] = 0;
    renderSidebar();
    renderMessages();
    renderThread();
    toHash();
  }

  function confirmFirst(confirm, then) {
    if (!confirm) { then(); return; }
    var ok = h('button', 'sk-button sk-' + confirm.style, [confirm.confirm], { type: 'button', 'data-testid': 'confirm-ok' });
    var deny = h('button', 'sk-button', [confirm.deny], { type: 'button', 'data-testid': 'confirm-deny' });
    var text = h('div');
    var c = ctx();
    confirm.text.forEach(function (node) { text.appendChild(R.toDom(node, document, null, c.origin)); });
    var modal = h('div', 'sk-modal', [h('h2', null, [confirm.title]), text, h('div', 'sk-modal-buttons', [deny, ok])],
      { role: 'dialog', 'aria-modal': 'true', 'data-testid': 'confirm-dialog' });
    var back = h('div', 'sk-modal-back', [modal]);
    var close = function () { back.remove(); document.removeEventListener('keydown', onKey); };
    var onKey = function (ev) { if (ev.key === 'Escape') close(); };
    deny.addEventListener('click', close);
    ok.addEventListener('click', function () { close(); then(); });
    back.addEventListener('click', function (ev) { if (ev.target === back) close(); });
    document.addEventListener('keydown', onKey);
    document.body.appendChild(back);
    ok.focus();
  }

  function doAction(m, act, elem) {
    var value = act.kind === 'select' ? elem.value : act.value;
    if (act.kind === 'select' && !value) return;
    var send = function () {
      if (act.url) window.open(act.url, '_blank', 'noopener');
      elem.disabled = true;
      var body = { ts: m.ts, channel: m.channel, actionId: act.actionId, user: S.me };
      if (value !== null && value !== undefined) body.value = value;
      post('/ui/action', body).then(function (res) {
        elem.disabled = false;
        reportFailure(res);
      }, function (err) { elem.disabled = false; notice('error', 'The stand-in did not answer: ' + err); });
    };
    confirmFirst(act.confirm, send);
  }

  /**
   * Shows the newest open modal. The one on screen is kept (and what was typed in it) unless another is newer or
   * redraw asks for it to be built again.
   */
  function renderModal(redraw) {
    var top = S.views.length ? S.views[S.views.length - 1] : null;
    if (shown && (!top || shown.id !== top.id || redraw)) {
      shown.back.remove();
      document.removeEventListener('keydown', shown.onKey);
      shown = null;
    }
    if (!top || shown) return;
    var c = ctx();
    var m = R.modal(top.view, c);
    var body = h('div', 'sk-view-body');
    m.blocks.forEach(function (node) { body.appendChild(R.toDom(node, document, null, c.origin)); });
    var general = h('div', 'sk-view-errors');
    var cancel = h('button', 'sk-button', [m.close], { type: 'button', 'data-testid': 'modal-cancel' });
    var submitButton = m.submit === null ? null
      : h('button', 'sk-button sk-primary', [m.submit], { type: 'button', 'data-testid': 'modal-submit' });
    var dialog = h('div', 'sk-modal sk-view', [h('h2', null, [m.title]), general, body,
      h('div', 'sk-modal-buttons', [cancel, submitButton])], {
      role: 'dialog', 'aria-modal': 'true', 'aria-label': m.title, 'data-testid': 'modal', 'data-view-id': top.id,
      'data-callback-id': str(top.view.callback_id)
    });
    var back = h('div', 'sk-modal-back', [dialog]);
    var state = { id: top.id, back: back, dialog: dialog, general: general };
    state.onKey = function (ev) { if (ev.key === 'Escape') cancelView(top); };
    cancel.addEventListener('click', function () { cancelView(top); });
    if (submitButton) submitButton.addEventListener('click', function () { submitModal(top, state, submitButton); });
    document.addEventListener('keydown', state.onKey);
    document.body.appendChild(back);
    shown = state;
    var first = dialog.querySelector('input, textarea');
    if (first) first.focus(); else cancel.focus();
  }

  function dropView(id) {
    S.views = S.views.filter(function (v) { return v.id !== id; });
    renderModal(false);
  }

  /** each message under its input block (by block_id); one naming no input block is shown above them all */
  function showViewErrors(state, errors) {
    state.dialog.querySelectorAll('.sk-field-error').forEach(function (e) { e.remove(); });
    state.dialog.querySelectorAll('.sk-invalid').forEach(function (e) { e.classList.remove('sk-invalid'); });
    var blocks = Array.prototype.slice.call(state.dialog.querySelectorAll('.sk-input-block'));
    Object.keys(errors).forEach(function (blockId) {
      var note = h('div', 'sk-field-error', [String(errors[blockId])],
        { 'data-testid': 'modal-error-' + blockId, role: 'alert' });
      var owner = blocks.find(function (b) { return b.getAttribute('data-block-id') === blockId; });
      if (owner) { owner.classList.add('sk-invalid'); owner.appendChild(note); } else state.general.appendChild(note);
    });
  }

  function submitModal(v, state, button) {
    var values = {};
    var missing = {};
    state.dialog.querySelectorAll('input[data-action-id], textarea[data-action-id]').forEach(function (f) {
      values[f.getAttribute('data-action-id')] = f.value;
      // Slack itself refuses an empty required field; the bot never hears of it
      if (f.getAttribute('data-required') === 'true' && !f.value.trim())
        missing[f.getAttribute('data-block-id')] = 'Please complete this required field.';
    });
    showViewErrors(state, missing);
    if (Object.keys(missing).length) return;
    button.disabled = true;
    post('/ui/view', { callbackId: str(v.view.callback_id), viewId: v.id, user: S.me, values: values })
      .then(function (res) {
        button.disabled = false;
        if (res.status === 404 && res.json.error === 'view_not_found') { dropView(v.id); reportFailure(res); return; }
        if (res.status !== 200) { reportFailure(res); return; }
        if (res.json.errors) { showViewErrors(state, res.json.errors); return; }
        if (res.json.closed) { dropView(v.id); return; }
        // the bot failed or replaced the modal: Slack keeps it open (a replacement arrives on the stream)
        if (res.json.bot && (res.json.bot.status < 200 || res.json.bot.status > 299))
          showViewErrors(state, { '': 'We had some trouble connecting. Try again?' });
      }, function (err) { button.disabled = false; notice('error', 'The stand-in did not answer: ' + err); });
  }

  /** closed here at once; the stand-in is told so that it stays closed on reload */
  function cancelView(v) {
    dropView(v.id);
    post('/ui/view/close', { viewId: v.id, user: S.me }).then(function (res) {
      if (res.status !== 404) reportFailure(res);
    }, function (err) { notice('error', 'The stand-in did not answer: ' + err); });
  }

  function submit(textarea, threadTs) {
    var text = textarea.value.trim();
    if (!text || !S.channel) return;
    var body = { text: text, user: S.me, channel: S.channel };
    if (threadTs) body.threadTs = threadTs;
    var path;
    if (/^\/incident(\s|$)/.test(text)) path = '/ui/command';
    else if (text.charAt(0) === '/') {
      notice('warning', text.split(/\s/)[0] + ' is not a valid command. In Slack, all messages that start with the "/" character are interpreted as commands.');
      return;
    } else if (/(^|\s)@ai-sre\b/.test(text)) path = '/ui/mention';
    else path = '/ui/message';
    textarea.value = '';
    stick[threadTs ? 'thread-messages' : 'messages'] = true;
    post(path, body).then(reportFailure, function (err) { notice('error', 'The stand-in did not answer: ' + err); });
  }

  function wireComposer(formId, textareaId, threadTs) {
    var form = q(formId), textarea = q(textareaId);
    form.addEventListener('submit', function (ev) { ev.preventDefault(); submit(textarea, threadTs()); });
    textarea.addEventListener('keydown', function (ev) {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); submit(textarea, threadTs()); }
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    wireComposer('composer-form', 'composer', function () { return null; });
    wireComposer('thread-composer-form', 'thread-composer', function () { return S.thread; });
    q('thread-close').addEventListener('click', function () { S.thread = null; renderAll(); });
    q('me').addEventListener('change', function (ev) {
      S.me = ev.target.value;
      localStorage.setItem('standin.me', S.me);
      load().then(connect);
    });
    window.addEventListener('hashchange', function () { fromHash(); renderAll(); });
    load().then(connect, function (err) { notice('error', 'Could not load the conversation: ' + err); connect(); });
  });
})();
`;

const BODY = `
<div class="sk-app">
  <nav class="sk-sidebar" aria-label="Channels">
    <div class="sk-team">ai-sre-test <small>(stand-in)</small></div>
    <div class="sk-side-section">
      <div class="sk-side-title">Channels</div>
      <div id="channels"></div>
    </div>
    <div class="sk-me">
      <label for="me">You are</label>
      <select id="me" data-testid="user-select"></select>
      <div class="sk-groups" id="groups"></div>
    </div>
    <div class="sk-status">
      <div id="live" data-testid="live"></div>
      <div id="bot" data-testid="bot-status"></div>
    </div>
  </nav>
  <main class="sk-main">
    <header class="sk-head"><span id="channel-name"></span> <small id="channel-id"></small></header>
    <div class="sk-list" id="messages" data-testid="messages"></div>
    <div class="sk-composer">
      <form id="composer-form">
        <textarea id="composer" data-testid="composer" rows="2" aria-label="Message"></textarea>
        <div class="sk-compose-bar">
          <span>Enter to send, Shift+Enter for a new line</span>
          <button class="sk-send" type="submit">Send</button>
        </div>
      </form>
    </div>
  </main>
  <aside class="sk-thread" id="thread" data-testid="thread" hidden>
    <header class="sk-head">Thread <small id="thread-where"></small>
      <button class="sk-close" id="thread-close" type="button" aria-label="Close thread">&times;</button></header>
    <div class="sk-list" id="thread-messages"></div>
    <div class="sk-composer">
      <form id="thread-composer-form">
        <textarea id="thread-composer" data-testid="thread-composer" rows="2" aria-label="Reply" placeholder="Reply…"></textarea>
        <div class="sk-compose-bar"><span>Replies go to this thread</span>
          <button class="sk-send" type="submit">Send</button></div>
      </form>
    </div>
  </aside>
</div>
<div class="sk-notices" id="notices" aria-live="polite"></div>
`;

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** The page and the Content-Security-Policy that lets only its own inline script and style run. */
export interface StandInPage {
  html: string;
  csp: string;
}

let cached: StandInPage | undefined;

/**
 * The stand-in's Slack-like page: self-contained (inline CSS and JS, nothing fetched from elsewhere), rendering from
 * `/ui/state` and `/ui/stream`. Stable hooks for browser tests: `data-testid` `message` (with `data-ts`,
 * `data-channel`), `thread`, `composer`, `thread-composer`, `channel`, `user-select`, `notice`, `confirm-dialog`,
 * and for the modal the bot opened: `modal` (with `data-view-id`), `modal-input-<action_id>`, `modal-submit`,
 * `modal-cancel`, `modal-error-<block_id>`.
 */
export function standInPage(): StandInPage {
  if (cached) return cached;
  const html = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<title>ai-sre-test · Slack stand-in</title>',
    `<style>${STYLE}</style>`,
    '</head><body>',
    BODY,
    `<script>${RENDER_SCRIPT}</script>`,
    `<script>${APP_SCRIPT}</script>`,
    '</body></html>',
  ].join('\n');
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(RENDER_SCRIPT)} ${sha256(APP_SCRIPT)}`,
    `style-src ${sha256(STYLE)}`,
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  cached = { html, csp };
  return cached;
}

/** The page's scripts, for tests that check what they do with data. */
export const PAGE_SCRIPTS = { render: RENDER_SCRIPT, app: APP_SCRIPT } as const;
