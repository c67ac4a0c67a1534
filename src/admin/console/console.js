// payhook operator console.
//
// Safety rules this file keeps, and the tests check:
// - Every value from the gateway (ids, sources, reasons, error texts: all of
//   it comes from Redis or from providers) is rendered as text: DOM nodes and
//   text nodes only, never HTML parsing of data. Links built from data are
//   in-page fragments (#payments/<id>), never a scheme a value could choose.
// - The admin token lives in sessionStorage (this tab only) and travels as
//   a bearer token to this origin; never in a URL, a cookie or local storage.
'use strict';

(() => {
  const TOKEN_KEY = 'payhook.adminToken';
  const POLL_MS = 2000;
  const CHART_WINDOW_MS = 10 * 60 * 1000;
  const DLQ_PAGE = 25;
  const SERIES = [
    // Arrivals drawn wider underneath: when every arrival becomes an event,
    // both lines stay visible.
    { key: 'arrivals', label: 'arrivals / s', color: '#1f77b4', css: 'arrivals', width: 5 },
    { key: 'events', label: 'events / s', color: '#2ca02c', css: 'events', width: 2 },
    { key: 'dead_letters', label: 'dead letters / s', color: '#d62728', css: 'dead-letters', width: 2 },
  ];

  const $ = (id) => document.getElementById(id);

  /** An element with attributes and children; strings become text nodes. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'class') node.className = value;
      else if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  /** Sets a node's text, or a dash for nothing. */
  function text(node, value) {
    node.textContent = value === undefined || value === null || value === '' ? '–' : String(value);
  }

  /** A link to a payment's story, for any id the gateway returned. */
  function storyLink(id) {
    return el('a', { href: '#payments/' + encodeURIComponent(id), class: 'mono' }, id);
  }

  function pairs(entries) {
    const dl = el('dl', { class: 'pairs' });
    for (const [label, value] of entries) {
      if (value === undefined || value === null || value === '') continue;
      dl.append(el('dt', {}, label), el('dd', {}, value));
    }
    return dl;
  }

  function localTime(iso) {
    if (!iso) return '–';
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString(undefined, { hour12: false });
  }

  function duration(secs) {
    if (secs === undefined || secs === null) return '–';
    const s = Math.max(0, Math.round(secs));
    if (s < 60) return `${s}s`;
    if (s < 3600) return s % 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s / 60}m`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
    return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
  }

  function words(value) {
    return String(value).replaceAll('_', ' ');
  }

  // ---------------------------------------------------------------- API

  class Unauthorized extends Error {}

  async function api(path, body) {
    const headers = { Authorization: 'Bearer ' + sessionStorage.getItem(TOKEN_KEY) };
    const init = { headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' };
    if (body !== undefined) {
      init.method = 'POST';
      init.body = JSON.stringify(body);
      headers['Content-Type'] = 'application/json';
    }
    const response = await fetch(path, init);
    if (response.status === 401) {
      signOut('The gateway refused this token.');
      throw new Unauthorized();
    }
    let json = null;
    try {
      json = await response.json();
    } catch {
      json = null;
    }
    setStatus(response.status === 503 ? 'Redis is unavailable' : '');
    return { status: response.status, body: json };
  }

  function setStatus(message) {
    text($('status'), message || `updated ${new Date().toLocaleTimeString(undefined, { hour12: false })}`);
  }

  /** Asks before something that changes state; resolves true on Confirm. */
  function confirmAction(message) {
    const dialog = $('confirm');
    $('confirm-text').textContent = message;
    return new Promise((resolve) => {
      const done = (answer) => {
        $('confirm-yes').removeEventListener('click', yes);
        $('confirm-no').removeEventListener('click', no);
        dialog.removeEventListener('cancel', no);
        dialog.close();
        resolve(answer);
      };
      const yes = () => done(true);
      const no = () => done(false);
      $('confirm-yes').addEventListener('click', yes);
      $('confirm-no').addEventListener('click', no);
      dialog.addEventListener('cancel', no);
      dialog.showModal();
    });
  }

  // ---------------------------------------------------------- sign in/out

  let poller = null;

  async function signIn(event) {
    event.preventDefault();
    const token = $('token').value.trim();
    $('token').value = '';
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    try {
      const { status } = await api('/admin/overview');
      if (status !== 200) throw new Error(`status ${status}`);
      start();
    } catch (error) {
      if (!(error instanceof Unauthorized)) {
        text($('login-error'), 'The gateway did not answer; try again.');
      }
    }
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    clearInterval(poller);
    poller = null;
    $('nav').hidden = true;
    $('logout').hidden = true;
    showView('login');
    $('login-error').textContent = message || '';
  }

  function start() {
    $('login-error').textContent = '';
    $('nav').hidden = false;
    $('logout').hidden = false;
    route();
    pollOverview();
    poller = setInterval(pollOverview, POLL_MS);
  }

  // ------------------------------------------------------------- routing

  function showView(name) {
    for (const view of document.querySelectorAll('.view')) view.hidden = view.id !== 'view-' + name;
    for (const link of document.querySelectorAll('#nav a')) link.classList.toggle('active', link.dataset.view === name);
  }

  function route() {
    if (!sessionStorage.getItem(TOKEN_KEY)) return showView('login');
    const [name, arg] = location.hash.replace(/^#/, '').split('/');
    const view = ['overview', 'payments', 'dead-letters', 'replay'].includes(name) ? name : 'overview';
    showView(view);
    if (view === 'payments' && arg) {
      const query = decodeURIComponent(arg);
      $('search').value = query;
      findPayment(query);
    }
    if (view === 'dead-letters' && !dlq.loaded) loadDeadLetters();
  }

  // ------------------------------------------------------------ overview

  const samples = [];
  let sourcesKnown = '';

  async function pollOverview() {
    if (document.hidden && samples.length > 0) return;
    let reply;
    try {
      reply = await api('/admin/overview');
    } catch {
      return;
    }
    if (reply.status !== 200 || !reply.body) return;
    const overview = reply.body;
    samples.push({ t: overview.now_ms, ...overview.totals });
    while (samples.length > 2 && samples[0].t < overview.now_ms - CHART_WINDOW_MS) samples.shift();
    showRates();
    showBacklog(overview.backlog);
    showDurability(overview.durability);
    showSources(overview.sources);
    drawChart();
  }

  /** Per-second rates between consecutive samples. */
  function rates() {
    const points = [];
    for (let i = 1; i < samples.length; i++) {
      const [a, b] = [samples[i - 1], samples[i]];
      const secs = (b.t - a.t) / 1000;
      if (secs <= 0) continue;
      const point = { t: b.t };
      for (const s of SERIES) point[s.key] = Math.max(0, (b[s.key] - a[s.key]) / secs);
      points.push(point);
    }
    return points;
  }

  function showRates() {
    const last = rates().at(-1);
    const fmt = (n) => (last ? n.toFixed(1) : '–');
    $('rate-arrivals').textContent = fmt(last && last.arrivals);
    $('rate-events').textContent = fmt(last && last.events);
    $('rate-dead-letters').textContent = fmt(last && last.dead_letters);
  }

  function showBacklog(backlog) {
    text($('backlog-pending'), backlog.pending);
    text($('backlog-lag'), backlog.lag);
    text($('backlog-oldest'), duration(backlog.oldest_pending_age_secs));
    text($('backlog-dlq'), backlog.dlq);
  }

  function showDurability(d) {
    const verdict = $('durability-verdict');
    if (!d) {
      verdict.className = 'badge warn';
      verdict.textContent = 'unknown';
      $('durability-summary').textContent = 'Redis does not tell its settings (CONFIG is disabled).';
      $('durability-details').replaceChildren();
      return;
    }
    const risk = d.can_lose_acknowledged ? 'bad' : d.dedupe_records_evictable ? 'warn' : 'ok';
    verdict.className = 'badge ' + risk;
    verdict.textContent = { bad: 'can lose acknowledged arrivals', warn: 'dedupe records evictable', ok: 'durable' }[risk];
    $('durability-summary').textContent = d.summary;
    $('durability-details').replaceChildren(
      ...[
        ['appendonly', d.appendonly],
        ['appendfsync', d.appendfsync],
        ['maxmemory-policy', d.maxmemory_policy],
        ['maxmemory', d.maxmemory],
        ['replicas waited for', d.wait_replicas],
      ].flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]),
    );
  }

  function byReason(counts) {
    const parts = Object.entries(counts || {})
      .filter(([, n]) => n > 0)
      .map(([reason, n]) => `${reason} ${n}`);
    return parts.length ? parts.join(', ') : '–';
  }

  function showSources(sources) {
    const body = $('sources').tBodies[0];
    body.replaceChildren(
      ...Object.entries(sources).map(([name, c]) =>
        el(
          'tr',
          { 'data-source': name },
          el('td', {}, name === '' ? '(unknown source)' : name),
          el('td', {}, c.provider || '–'),
          el('td', { class: 'accepted' }, c.accepted),
          el('td', { class: 'refused' }, byReason(c.refused)),
          el('td', { class: 'published' }, c.published),
          el('td', {}, c.duplicates),
          el('td', {}, c.ignored),
          el('td', { class: 'dead-lettered' }, byReason(c.dead_lettered)),
        ),
      ),
    );
    const names = Object.keys(sources).filter((n) => n !== '');
    if (names.join() !== sourcesKnown) {
      sourcesKnown = names.join();
      for (const select of [$('dlq-source'), $('replay-source')]) {
        const chosen = select.value;
        select.replaceChildren(el('option', { value: '' }, 'all sources'), ...names.map((n) => el('option', { value: n }, n)));
        select.value = names.includes(chosen) ? chosen : '';
      }
    }
    const reasons = new Set(Object.values(sources).flatMap((c) => Object.keys(c.dead_lettered || {})));
    for (const option of $('dlq-reasons').options) reasons.add(option.value);
    $('dlq-reasons').replaceChildren(...[...reasons].sort().map((r) => el('option', { value: r })));
  }

  function drawChart() {
    const canvas = $('chart');
    const ratio = window.devicePixelRatio || 1;
    const [width, height] = [canvas.clientWidth || 900, canvas.clientHeight || 220];
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext('2d');
    ctx.scale(ratio, ratio);
    ctx.clearRect(0, 0, width, height);
    const pad = { left: 48, right: 12, top: 10, bottom: 22 };
    const [w, h] = [width - pad.left - pad.right, height - pad.top - pad.bottom];
    const points = rates();
    // The window grows with the samples, from one minute up to ten.
    const end = samples.length ? samples.at(-1).t : Date.now();
    const span = Math.min(CHART_WINDOW_MS, Math.max(60_000, samples.length ? end - samples[0].t : 0));
    const begin = end - span;
    const peak = Math.max(1, ...points.flatMap((p) => SERIES.map((s) => p[s.key])));
    const top = niceCeiling(peak);
    const x = (t) => pad.left + ((t - begin) / span) * w;
    const y = (v) => pad.top + h - (v / top) * h;
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#5b6570';
    ctx.strokeStyle = '#d8dde3';
    ctx.lineWidth = 1;
    for (const v of [0, top / 2, top]) {
      ctx.beginPath();
      ctx.moveTo(pad.left, y(v));
      ctx.lineTo(pad.left + w, y(v));
      ctx.stroke();
      ctx.textAlign = 'right';
      ctx.fillText(formatRate(v), pad.left - 6, y(v) + 4);
    }
    ctx.textAlign = 'center';
    for (const back of [span, span / 2]) ctx.fillText('-' + duration(back / 1000), x(end - back), height - 6);
    ctx.textAlign = 'right';
    ctx.fillText('now', pad.left + w, height - 6);
    if (points.length === 0) {
      ctx.fillText('collecting…', pad.left + w / 2, pad.top + h / 2);
    }
    for (const s of SERIES) {
      ctx.lineWidth = s.width;
      ctx.strokeStyle = s.color;
      ctx.beginPath();
      points.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p[s.key])) : ctx.moveTo(x(p.t), y(p[s.key]))));
      ctx.stroke();
    }
    $('legend').replaceChildren(...SERIES.map((s) => el('span', {}, el('span', { class: 'swatch ' + s.css }), s.label)));
  }

  function niceCeiling(v) {
    const magnitude = 10 ** Math.floor(Math.log10(v));
    return [1, 2, 5, 10].map((m) => m * magnitude).find((c) => c >= v);
  }

  function formatRate(v) {
    return v >= 10 ? String(Math.round(v)) : v.toFixed(1);
  }

  // ---------------------------------------------------- a payment's story

  async function findPayment(query) {
    const story = $('story');
    story.replaceChildren(el('p', { class: 'hint' }, 'Searching…'));
    let reply;
    try {
      reply = await api('/admin/payments/' + encodeURIComponent(query));
    } catch {
      return;
    }
    if (reply.status === 404) {
      story.replaceChildren(
        el(
          'div',
          { class: 'panel', id: 'story-none' },
          el('p', {}, 'Nothing matches ', el('code', { class: 'query' }, query), '.'),
          el(
            'p',
            { class: 'hint' },
            'No payment id, idempotency key or provider event id that Redis still holds, and no kept arrival with this id. ' +
              'A payment whose webhook never verified is not stored: see the refused counts in the overview.',
          ),
        ),
      );
      return;
    }
    if (reply.status !== 200) {
      story.replaceChildren(el('p', { class: 'error' }, 'The search failed: ', reply.body && reply.body.error));
      return;
    }
    const { payments, arrival, dead_letter_search_truncated: truncated } = reply.body;
    story.replaceChildren(...(arrival ? [arrivalPanel(arrival)] : []), ...payments.map(paymentPanel));
    if (truncated) story.append(el('p', { class: 'hint' }, 'The DLQ is long: only part of it was searched for these arrivals.'));
  }

  function verdict(payment) {
    const counts = {};
    for (const m of payment.timeline) counts[m.outcome] = (counts[m.outcome] || 0) + 1;
    const waiting = payment.timeline.filter((m) => m.dead_letter).length;
    if (payment.published) {
      const dup = counts.duplicate ? `, ${counts.duplicate} duplicate announcement(s) suppressed` : '';
      const refused = counts.conflict ? `, ${counts.conflict} conflicting announcement(s) refused` : '';
      return { css: 'ok', text: `Published once as event ${payment.published.event_id}${dup}${refused}.` };
    }
    if (waiting) return { css: 'bad', text: `Not published: ${waiting} dead letter(s) wait in the DLQ. Fix the cause, then redrive.` };
    return { css: 'warn', text: 'Not published (yet): see the arrival below, or the dead letters.' };
  }

  function paymentPanel(p) {
    const v = verdict(p);
    const published = p.published || {};
    return el(
      'div',
      { class: 'panel payment', 'data-key': p.idempotency_key },
      el('h2', {}, 'Payment ', el('code', { class: 'payment-key' }, p.idempotency_key), ' ', ...p.matched_by.map((m) => el('span', { class: 'tag' }, 'by ' + words(m)))),
      el('p', { class: 'verdict result ' + v.css }, v.text),
      pairs([
        ['Event id', published.event_id],
        ['Published at', published.published_at && localTime(published.published_at)],
        ['Stream entry', published.entry_id && `${published.entry_id} (partition ${p.partition})`],
        ['Record kept for', p.expires_in_secs !== null && p.expires_in_secs !== undefined ? duration(p.expires_in_secs) : null],
      ]),
      p.timeline.length
        ? el(
            'table',
            { class: 'timeline' },
            el('thead', {}, el('tr', {}, ...['When', 'What', 'Via', 'Arrival', 'Source', 'Provider event', 'Details'].map((h) => el('th', {}, h)))),
            el('tbody', {}, ...p.timeline.map(momentRow)),
          )
        : el('p', { class: 'hint' }, 'No announcement of this payment has been processed yet.'),
      p.capped ? el('p', { class: 'hint' }, 'Long story: the first entry and the newest are kept.') : null,
      p.unreadable_entries ? el('p', { class: 'hint' }, `${p.unreadable_entries} entry(ies) could not be read.`) : null,
    );
  }

  function momentRow(m) {
    const details = [];
    if (m.event_id) details.push(el('div', {}, 'event ', el('code', {}, m.event_id)));
    if (m.entry_id) details.push(el('div', {}, 'entry ', el('code', {}, m.entry_id)));
    if (m.reason) details.push(el('div', {}, 'reason ', el('code', {}, m.reason)));
    if (m.dead_letter) {
      details.push(
        el('div', {}, `in the DLQ (${m.dead_letter.attempts} attempts): `, m.dead_letter.error),
        el('button', { type: 'button', class: 'small', onclick: () => openLetter(m.dead_letter.id) }, 'Open dead letter'),
      );
    }
    return el(
      'tr',
      { class: 'moment', 'data-outcome': m.outcome },
      el('td', {}, localTime(m.at)),
      el('td', {}, el('span', { class: 'outcome ' + m.outcome }, words(m.outcome))),
      el('td', {}, m.via),
      el('td', {}, storyLink(m.arrival_id), el('div', { class: 'hint' }, 'received ' + localTime(m.received_at) + ', verified')),
      el('td', {}, m.source),
      el('td', {}, m.provider_event_type || '–', m.provider_event_id ? el('div', { class: 'mono' }, m.provider_event_id) : null),
      el('td', {}, ...details),
    );
  }

  function arrivalPanel(a) {
    const notifications = a.notifications.map((n) =>
      el('li', {}, n.provider_event_type, ' → ', n.idempotency_key ? storyLink(n.idempotency_key) : 'not a payment success'),
    );
    const letters = a.dead_letters.map((l) =>
      el(
        'li',
        {},
        `${localTime(l.failed_at)}: `,
        el('code', {}, l.reason),
        ` after ${l.attempts} attempt(s): `,
        l.error,
        ' ',
        el('button', { type: 'button', class: 'small', onclick: () => openLetter(l.id) }, 'Open dead letter'),
      ),
    );
    const progress = {
      waiting: 'waiting: no processor has read it yet',
      pending: 'being processed',
      retry_scheduled: 'failed; waiting for its next attempt',
      done: 'processed',
    }[a.progress];
    return el(
      'div',
      { class: 'panel arrival' },
      el('h2', {}, 'Arrival ', el('code', {}, a.arrival_id)),
      pairs([
        ['Received', localTime(a.received_at)],
        ['Source', a.source],
        ['Provider', a.provider],
        ['Signature', a.verified ? 'verified on arrival (only verified requests are stored)' : null],
        ['Request id', a.request_id],
        ['Body', a.body_length !== undefined ? `${a.body_length} bytes, SHA-256 ${a.body_sha256}` : null],
        ['Unreadable field', a.malformed_field],
        ['Processing', progress],
        ['Cannot be normalized now', a.normalize_error],
      ]),
      notifications.length ? [el('h3', {}, 'Notifications'), el('ul', {}, notifications)] : null,
      letters.length ? [el('h3', {}, 'Dead letters'), el('ul', { class: 'arrival-letters' }, letters)] : null,
    );
  }

  // --------------------------------------------------------- dead letters

  const dlq = { loaded: false, before: null, history: [], next: null, results: new Map() };

  async function loadDeadLetters() {
    dlq.loaded = true;
    const params = new URLSearchParams({ count: String(DLQ_PAGE) });
    const reason = $('dlq-reason').value.trim();
    const source = $('dlq-source').value;
    if (reason) params.set('reason', reason);
    if (source) params.set('source', source);
    if (dlq.before) params.set('before', dlq.before);
    let reply;
    try {
      reply = await api('/admin/dlq/search?' + params);
    } catch {
      return;
    }
    if (reply.status !== 200) return;
    dlq.next = reply.body.next;
    const rows = reply.body.letters.map(letterRow);
    $('dlq-table').tBodies[0].replaceChildren(...rows);
    $('dlq-empty').hidden = rows.length > 0;
    $('dlq-older').disabled = !dlq.next;
    $('dlq-newer').disabled = dlq.history.length === 0;
    $('dlq-select-all').checked = false;
    updateSelection();
  }

  function letterRow(l) {
    const result = dlq.results.get(l.id);
    if (l.malformed_field) {
      // An entry payhook did not write: only its id and the field at fault.
      return el(
        'tr',
        { class: 'letter unreadable', 'data-id': l.id },
        el('td', {}, el('input', { type: 'checkbox', class: 'pick', 'aria-label': 'select', onchange: updateSelection })),
        el('td', {}, ''),
        el('td', { class: 'source' }, ''),
        el('td', { class: 'reason' }, ''),
        el('td', {}, ''),
        el('td', {}, ''),
        el('td', { class: 'error-text' }, `unreadable letter: field ${l.malformed_field}`),
        el('td', { class: 'result ' + (result ? result.css : '') }, result ? result.text : ''),
        el('td', {}, ''),
      );
    }
    return el(
      'tr',
      { class: 'letter', 'data-id': l.id },
      el('td', {}, el('input', { type: 'checkbox', class: 'pick', 'aria-label': 'select', onchange: updateSelection })),
      el('td', {}, localTime(l.failed_at)),
      el('td', { class: 'source' }, l.source),
      el('td', { class: 'reason' }, el('code', {}, l.reason)),
      el('td', {}, l.attempts),
      el('td', {}, storyLink(l.arrival_id)),
      el('td', { class: 'error-text' }, l.error),
      el('td', { class: 'result ' + (result ? result.css : '') }, result ? result.text : ''),
      el('td', {}, el('button', { type: 'button', class: 'small secondary', onclick: () => openLetter(l.id) }, 'Details')),
    );
  }

  function picked() {
    return [...document.querySelectorAll('#dlq-table tbody tr')].filter((row) => row.querySelector('.pick').checked);
  }

  function updateSelection() {
    const rows = document.querySelectorAll('#dlq-table tbody tr');
    for (const row of rows) row.classList.toggle('selected', row.querySelector('.pick').checked);
    const n = picked().length;
    $('redrive-selected').disabled = n === 0;
    $('redrive-selected').textContent = n ? `Redrive selected (${n})…` : 'Redrive selected';
  }

  async function openLetter(id) {
    if (location.hash !== '#dead-letters') location.hash = '#dead-letters';
    const panel = $('dlq-detail');
    let reply;
    try {
      reply = await api('/admin/dlq/' + encodeURIComponent(id));
    } catch {
      return;
    }
    panel.hidden = false;
    if (reply.status !== 200) {
      panel.replaceChildren(el('p', {}, 'Dead letter ', el('code', {}, id), ' is no longer in the DLQ.'));
      return;
    }
    const { letter: l, arrival: a } = reply.body;
    panel.replaceChildren(
      el('h2', {}, 'Dead letter ', el('code', { class: 'letter-id' }, l.id)),
      pairs([
        ['Reason', el('code', {}, l.reason)],
        ['Error', l.error],
        ['Attempts', l.attempts],
        ['Failed at', localTime(l.failed_at)],
        ['Arrival', storyLink(l.arrival_id)],
        ['Received at', a ? localTime(a.received_at) : 'the arrival is no longer kept'],
        ['Source', l.source],
        ['Provider', a && a.provider],
        ['Request id', a && a.request_id],
        ['Body length', a && `${a.body_length} bytes`],
        ['Body SHA-256', a && el('code', {}, a.body_sha256)],
      ]),
      el('p', { class: 'hint' }, 'The body is never shown: it may hold personal data. Its length and SHA-256 identify it.'),
      el('div', { class: 'actions' }, el('button', { type: 'button', onclick: () => redrive([l.id]) }, 'Redrive this letter…')),
    );
    panel.scrollIntoView({ block: 'nearest' });
  }

  /** What one redrive report means for its letter. */
  function describe(report) {
    if (!report) return { css: 'bad', text: 'failed: the gateway did not answer' };
    if (report.matched === 0) return { css: 'bad', text: 'not in the DLQ any more' };
    if (report.missing) return { css: 'bad', text: 'the arrival is no longer kept: cannot redrive' };
    if (report.failed) return { css: 'bad', text: 'still failing: stays in the DLQ' };
    if (report.published) return { css: 'ok', text: 'published: left the DLQ' };
    if (report.duplicate) return { css: 'ok', text: 'already published (duplicate): left the DLQ' };
    return { css: 'ok', text: 'not a payment success (ignored): left the DLQ' };
  }

  async function redrive(ids) {
    const ok = await confirmAction(
      ids.length === 1 ? `Redrive dead letter ${ids[0]}?` : `Redrive these ${ids.length} dead letters, one by one?`,
    );
    if (!ok) return;
    const summary = $('redrive-summary');
    summary.hidden = false;
    const list = el('ul', { class: 'redrive-results' });
    summary.replaceChildren(el('h2', {}, 'Redrive results'), list);
    for (const id of ids) {
      let report = null;
      try {
        const reply = await api('/admin/dlq/redrive', { ids: [id] });
        report = reply.status === 200 ? reply.body : null;
      } catch {
        return;
      }
      const result = describe(report);
      dlq.results.set(id, result);
      list.append(el('li', { class: 'result ' + result.css, 'data-id': id }, el('code', {}, id), ': ' + result.text));
      const cell = document.querySelector(`#dlq-table tr[data-id="${CSS.escape(id)}"] td.result`);
      if (cell) {
        cell.className = 'result ' + result.css;
        cell.textContent = result.text;
      }
    }
  }

  async function redriveAll() {
    const size = $('backlog-dlq').textContent;
    const ok = await confirmAction(`Redrive every dead letter in the DLQ (${size})? Letters that still fail stay.`);
    if (!ok) return;
    let reply;
    try {
      reply = await api('/admin/dlq/redrive', { all: true });
    } catch {
      return;
    }
    const summary = $('redrive-summary');
    summary.hidden = false;
    summary.replaceChildren(el('h2', {}, 'Redrive of all dead letters'), reply.status === 200 ? counts(reply.body, false) : el('p', { class: 'error' }, 'The redrive failed.'));
    dlq.before = null;
    dlq.history = [];
    loadDeadLetters();
  }

  // --------------------------------------------------------------- replay

  let dryRun = null;

  function localInput(date) {
    const pad = (n) => String(n).padStart(2, '0');
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  }

  function replayRange() {
    const since = new Date($('replay-since').value);
    const untilText = $('replay-until').value;
    const until = untilText ? new Date(untilText) : new Date();
    if (Number.isNaN(since.getTime()) || Number.isNaN(until.getTime())) return null;
    const range = { since: since.toISOString(), until: until.toISOString() };
    if ($('replay-source').value) range.source = $('replay-source').value;
    return range;
  }

  function counts(report, dry) {
    const cells = [
      ['matched', 'arrivals matched'],
      ['published', dry ? 'would publish' : 'published'],
      ['duplicate', 'already published'],
      ['ignored', 'not a payment success'],
      ['failed', 'failed'],
    ];
    if (report.missing) cells.push(['missing', 'arrival no longer kept']);
    return el(
      'div',
      {},
      el('div', { class: 'counts' }, ...cells.map(([key, label]) => el('div', { 'data-count': key }, el('span', { class: 'n' }, report[key]), el('span', { class: 'hint' }, label)))),
      report.note ? el('p', { class: 'hint' }, report.note) : null,
    );
  }

  async function replayDry(event) {
    event.preventDefault();
    const range = replayRange();
    if (!range) return;
    let reply;
    try {
      reply = await api('/admin/replay', { ...range, dry_run: true });
    } catch {
      return;
    }
    const result = $('replay-result');
    if (reply.status !== 200) {
      result.replaceChildren(el('p', { class: 'error' }, 'The dry run failed: ', reply.body && reply.body.error));
      return;
    }
    dryRun = range;
    result.replaceChildren(el('div', { class: 'panel', id: 'replay-dry-result' }, el('h2', {}, 'Dry run: nothing was published'), counts(reply.body, true)));
    $('replay-run').disabled = false;
  }

  async function replayRun() {
    if (!dryRun) return;
    const range = dryRun;
    const what = `${range.source || 'all sources'}, ${localTime(range.since)} to ${localTime(range.until)}`;
    if (!(await confirmAction(`Replay the arrivals of ${what}? Payments already published are not published again.`))) return;
    $('replay-run').disabled = true;
    let reply;
    try {
      reply = await api('/admin/replay', range);
    } catch {
      return;
    }
    const panel =
      reply.status === 200
        ? el('div', { class: 'panel', id: 'replay-run-result' }, el('h2', {}, 'Replay done'), counts(reply.body, false))
        : el('p', { class: 'error' }, 'The replay failed: ', reply.body && reply.body.error);
    $('replay-result').append(panel);
    dryRun = null;
  }

  /** Any change of the range locks the replay until a new dry run. */
  function replayChanged() {
    dryRun = null;
    $('replay-run').disabled = true;
  }

  // ---------------------------------------------------------------- wiring

  function init() {
    $('login-form').addEventListener('submit', signIn);
    $('logout').addEventListener('click', () => signOut(''));
    window.addEventListener('hashchange', route);
    $('search-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const query = $('search').value.trim();
      const hash = '#payments/' + encodeURIComponent(query);
      if (!query) return;
      // The same search again changes no hash: run it directly.
      if (location.hash === hash) findPayment(query);
      else location.hash = hash;
    });
    $('dlq-filter').addEventListener('submit', (event) => {
      event.preventDefault();
      dlq.before = null;
      dlq.history = [];
      loadDeadLetters();
    });
    $('dlq-older').addEventListener('click', () => {
      dlq.history.push(dlq.before);
      dlq.before = dlq.next;
      loadDeadLetters();
    });
    $('dlq-newer').addEventListener('click', () => {
      dlq.before = dlq.history.pop() || null;
      loadDeadLetters();
    });
    $('dlq-select-all').addEventListener('change', (event) => {
      for (const box of document.querySelectorAll('#dlq-table .pick')) box.checked = event.target.checked;
      updateSelection();
    });
    $('redrive-selected').addEventListener('click', () => redrive(picked().map((row) => row.dataset.id)));
    $('redrive-all').addEventListener('click', redriveAll);
    $('replay-form').addEventListener('submit', replayDry);
    $('replay-run').addEventListener('click', replayRun);
    for (const id of ['replay-since', 'replay-until', 'replay-source']) $(id).addEventListener('input', replayChanged);
    const now = new Date();
    $('replay-since').value = localInput(new Date(now.getTime() - 3600 * 1000));
    $('replay-until').value = localInput(now);
    if (sessionStorage.getItem(TOKEN_KEY)) start();
    else showView('login');
  }

  init();
})();
