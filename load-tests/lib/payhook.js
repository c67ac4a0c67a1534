// Shared by the k6 scripts: Stripe-style signing, sample bodies, loopback guard.

import crypto from 'k6/crypto';
import encoding from 'k6/encoding';
import exec from 'k6/execution';

// ---- Stripe ----------------------------------------------------------------

// The header Stripe sends: `t=<unix seconds>,v1=<hex HMAC-SHA256>`, the MAC
// taken over `<t>.<raw body>` and keyed by the secret string as it is, its
// `whsec_` prefix included. The body must be sent byte for byte as signed.
export function stripeSignatureHeader(secret, t, body) {
  return `t=${t},v1=${crypto.hmac('sha256', secret, `${t}.${body}`, 'hex')}`;
}

// A `payment_intent.succeeded` event whose ids all end in `unique`, as the
// exact string that is both signed and sent.
export function paymentIntentSucceeded(unique, created) {
  return JSON.stringify({
    id: `evt_${unique}`,
    object: 'event',
    api_version: '2024-06-20',
    type: 'payment_intent.succeeded',
    created,
    livemode: false,
    data: {
      object: {
        id: `pi_${unique}`,
        object: 'payment_intent',
        amount: 2000,
        amount_received: 2000,
        currency: 'eur',
        customer: `cus_${unique}`,
        status: 'succeeded',
        payment_method_types: ['card'],
        metadata: { order_id: `order_${unique}` },
      },
    },
  });
}

// ---- Helpers ---------------------------------------------------------------

export function unixNow() {
  return Math.floor(Date.now() / 1000);
}

// Unique across the run: the run id, the scenario and the iteration number
// within it (which k6 counts across all VUs).
export function uniqueSuffix(runId, scenario) {
  return `k6${runId}${scenario}${exec.scenario.iterationInTest}`;
}

export function jsonField(res, field) {
  try {
    const value = res.json(field);
    return value === undefined ? null : value;
  } catch (_) {
    return null;
  }
}

export function header(res, name) {
  const wanted = name.toLowerCase();
  for (const key of Object.keys(res.headers)) {
    if (key.toLowerCase() === wanted) return res.headers[key];
  }
  return null;
}

export function assertLoopback(url) {
  const match = /^https?:\/\/(\[[^\]]+\]|[^/:?#]+)(:\d+)?(?:[/?#]|$)/i.exec(url);
  const host = match ? match[1].toLowerCase() : '';
  const loopback =
    host === 'localhost' ||
    host === '[::1]' ||
    /^127\.(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)$/.test(host);
  if (!loopback) {
    throw new Error(`PAYHOOK_URL must point at loopback (127.0.0.0/8, localhost or [::1]); got ${url}`);
  }
}

// ---- Standard Webhooks ------------------------------------------------------

// The three headers a Standard Webhooks sender adds: HMAC-SHA256 over
// `<id>.<t>.<body>`, keyed by the base64 part of the `whsec_` secret.
export function standardWebhooksHeaders(secret, id, t, body) {
  const key = encoding.b64decode(secret.replace(/^whsec_/, ''), 'std');
  const signature = crypto.hmac('sha256', key, `${id}.${t}.${body}`, 'base64');
  return { 'webhook-id': id, 'webhook-timestamp': `${t}`, 'webhook-signature': `v1,${signature}` };
}

// A payment as config/payhook.toml's `dodo` source maps it.
export function mappedPayment(unique) {
  return JSON.stringify({
    type: 'payment.succeeded',
    timestamp: new Date().toISOString(),
    data: { payment_id: `pay_${unique}`, total_amount: 2500, currency: 'EUR', metadata: { order_id: `ord_${unique}` } },
  });
}
