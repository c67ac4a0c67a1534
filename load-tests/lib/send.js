// One signed delivery per call, for the scenario scripts.

import http from 'k6/http';
import { check } from 'k6';
import {
  assertLoopback,
  mappedPayment,
  paymentIntentSucceeded,
  standardWebhooksHeaders,
  stripeSignatureHeader,
  unixNow,
} from './payhook.js';

export const BASE_URL = (__ENV.PAYHOOK_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const STRIPE_SECRET = __ENV.PAYHOOK_SECRET || 'whsec_test_secret';
const DODO_SECRET = __ENV.PAYHOOK_DODO_SECRET || 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
assertLoopback(BASE_URL);

// Shared options: no redirects (a webhook endpoint never redirects, and a
// redirect could lead off loopback).
export const common = { maxRedirects: 0 };

export function stripe(unique, kind) {
  const t = unixNow();
  const body = paymentIntentSucceeded(unique, t);
  return post('stripe', body, { 'Stripe-Signature': stripeSignatureHeader(STRIPE_SECRET, t, body) }, kind);
}

export function dodo(unique, kind) {
  const body = mappedPayment(unique);
  return post('dodo', body, standardWebhooksHeaders(DODO_SECRET, `msg_${unique}`, unixNow(), body), kind);
}

function post(source, body, headers, kind) {
  const res = http.post(`${BASE_URL}/webhooks/${source}`, body, {
    headers: Object.assign({ 'Content-Type': 'application/json' }, headers),
    tags: { name: `POST /webhooks/${source}`, kind },
  });
  check(res, { [`${kind}: 200`]: (r) => r.status === 200 });
  return res;
}
