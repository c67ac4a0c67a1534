// payhook ingest rate as a ratio of the bare HTTP stack, measured in one run.
//
//   k6 run load-tests/ingest-ratio.js
//
// Two phases against the same gateway, with the same VUs and duration:
//   baseline  GET /healthz: axum + payhook's middleware, no verification, no Redis
//   ingest    POST /webhooks/{source}: read, verify (HMAC), XADD to Redis, answer
// Compare `http_reqs{phase:ingest}` with `http_reqs{phase:baseline}` in the
// summary: the machine is noisy, so only the ratio within one run means much.
//
// Environment: PAYHOOK_URL, PAYHOOK_SOURCE, PAYHOOK_SECRET as in smoke.js;
// VUS (default 20), PHASE_SECONDS (default 10).

import http from 'k6/http';
import { check } from 'k6';
import { assertLoopback, paymentIntentSucceeded, stripeSignatureHeader, uniqueSuffix, unixNow } from './lib/payhook.js';

const BASE_URL = (__ENV.PAYHOOK_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const SOURCE = __ENV.PAYHOOK_SOURCE || 'stripe';
const SECRET = __ENV.PAYHOOK_SECRET || 'whsec_test_secret';
const VUS = parseInt(__ENV.VUS || '20', 10);
const SECONDS = parseInt(__ENV.PHASE_SECONDS || '10', 10);
assertLoopback(BASE_URL);

export const options = {
  scenarios: {
    baseline: { executor: 'constant-vus', exec: 'baseline', vus: VUS, duration: `${SECONDS}s`, tags: { phase: 'baseline' } },
    ingest: {
      executor: 'constant-vus', exec: 'ingest', vus: VUS, duration: `${SECONDS}s`,
      startTime: `${SECONDS + 2}s`, tags: { phase: 'ingest' },
    },
  },
  thresholds: {
    checks: ['rate>0.99'],
    // Listed so the summary prints each phase's own count and latency.
    'http_reqs{phase:baseline}': ['count>0'],
    'http_reqs{phase:ingest}': ['count>0'],
    'http_req_duration{phase:baseline}': ['p(95)<1000'],
    'http_req_duration{phase:ingest}': ['p(95)<1000'],
  },
  maxRedirects: 0,
};

export function setup() {
  return { runId: `${Date.now().toString(36)}${Math.floor(Math.random() * 1679616).toString(36)}` };
}

export function baseline() {
  const res = http.get(`${BASE_URL}/healthz`);
  check(res, { 'baseline: 200': (r) => r.status === 200 });
}

export function ingest(data) {
  const t = unixNow();
  const body = paymentIntentSucceeded(uniqueSuffix(data.runId, 'r'), t);
  const res = http.post(`${BASE_URL}/webhooks/${SOURCE}`, body, {
    headers: { 'Content-Type': 'application/json', 'Stripe-Signature': stripeSignatureHeader(SECRET, t, body) },
  });
  check(res, { 'ingest: 200': (r) => r.status === 200 });
}
