// payhook smoke load test: signed Stripe `payment_intent.succeeded` webhooks
// against a gateway on loopback, plus a trickle of wrongly signed ones.
//
//   k6 run load-tests/smoke.js
//
// Environment (all optional):
//   PAYHOOK_URL     gateway base URL, loopback only (default http://127.0.0.1:8080)
//   PAYHOOK_SOURCE  source name in the path           (default stripe)
//   PAYHOOK_SECRET  that source's Stripe secret       (default whsec_test_secret)
//
// See load-tests/README.md for what the thresholds mean.

import http from 'k6/http';
import { check } from 'k6';
import {
  assertLoopback,
  header,
  jsonField,
  paymentIntentSucceeded,
  stripeSignatureHeader,
  uniqueSuffix,
  unixNow,
} from './lib/payhook.js';

const BASE_URL = (__ENV.PAYHOOK_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const SOURCE = __ENV.PAYHOOK_SOURCE || 'stripe';
const SECRET = __ENV.PAYHOOK_SECRET || 'whsec_test_secret';
const WEBHOOK_URL = `${BASE_URL}/webhooks/${encodeURIComponent(SOURCE)}`;

// This script must never send anything off the machine: refuse, before any
// VU starts, a base URL whose host is not a loopback address.
assertLoopback(BASE_URL);

export const options = {
  scenarios: {
    // The load itself: correctly signed, unique events.
    valid: {
      executor: 'shared-iterations',
      exec: 'validWebhook',
      vus: 5,
      iterations: 200,
      maxDuration: '30s',
      tags: { kind: 'valid' },
    },
    // The negative path, alongside: a few deliveries signed with the wrong
    // secret, which must be refused with 401.
    invalid_signature: {
      executor: 'shared-iterations',
      exec: 'invalidSignature',
      vus: 1,
      iterations: 10,
      maxDuration: '30s',
      tags: { kind: 'invalid_signature' },
    },
  },
  thresholds: {
    // Every check of both scenarios, together.
    checks: ['rate>0.99'],
    // Transport errors and non-2xx answers, on the valid deliveries only: the
    // expected 401s are tagged kind=invalid_signature and left out.
    'http_req_failed{kind:valid}': ['rate<0.01'],
    'http_req_duration': ['p(95)<500'],
    // Listed so the summary shows each path's own latency.
    'http_req_duration{kind:valid}': ['p(95)<500'],
    'http_req_duration{kind:invalid_signature}': ['p(95)<500'],
  },
  // A redirect could lead off loopback; a webhook endpoint never redirects.
  maxRedirects: 0,
};

// One id per run, shared by every VU, so event ids do not repeat across runs
// (payhook dedupes on them further down the pipeline).
export function setup() {
  return { runId: `${Date.now().toString(36)}${Math.floor(Math.random() * 1679616).toString(36)}` };
}

export function validWebhook(data) {
  const unique = uniqueSuffix(data.runId, 'v');
  const t = unixNow();
  const body = paymentIntentSucceeded(unique, t);
  const res = http.post(WEBHOOK_URL, body, {
    headers: {
      'Content-Type': 'application/json',
      'Stripe-Signature': stripeSignatureHeader(SECRET, t, body),
    },
    tags: { name: 'POST /webhooks/{source}' },
  });
  check(res, {
    'valid: status is 200': (r) => r.status === 200,
    'valid: status "accepted"': (r) => jsonField(r, 'status') === 'accepted',
    'valid: arrival_id in body': (r) => typeof jsonField(r, 'arrival_id') === 'string',
    'valid: x-payhook-arrival-id header': (r) => !!header(r, 'x-payhook-arrival-id'),
  });
}

export function invalidSignature(data) {
  const unique = uniqueSuffix(data.runId, 'i');
  const t = unixNow();
  const body = paymentIntentSucceeded(unique, t);
  const res = http.post(WEBHOOK_URL, body, {
    headers: {
      'Content-Type': 'application/json',
      // Well formed and fresh, but keyed by another secret.
      'Stripe-Signature': stripeSignatureHeader(`${SECRET}_wrong`, t, body),
    },
    tags: { name: 'POST /webhooks/{source}' },
    // A 401 is the right answer here, so it is not an http_req_failed.
    responseCallback: http.expectedStatuses(401),
  });
  check(res, {
    'invalid signature: status is 401': (r) => r.status === 401,
    'invalid signature: error "invalid_signature"': (r) => jsonField(r, 'error') === 'invalid_signature',
    'invalid signature: no arrival id': (r) => !header(r, 'x-payhook-arrival-id'),
  });
}
