// Mixed providers: Stripe and Standard Webhooks deliveries side by side,
// against config/payhook.toml's `stripe` and `dodo` sources.
//   k6 run load-tests/mixed.js
import exec from 'k6/execution';
import { common, dodo, stripe } from './lib/send.js';

export const options = Object.assign({}, common, {
  scenarios: {
    stripe: { executor: 'constant-arrival-rate', rate: 150, timeUnit: '1s', duration: '20s', preAllocatedVUs: 30, exec: 'stripeLoad' },
    dodo: { executor: 'constant-arrival-rate', rate: 150, timeUnit: '1s', duration: '20s', preAllocatedVUs: 30, exec: 'dodoLoad' },
  },
  thresholds: {
    checks: ['rate>0.99'],
    http_req_failed: ['rate<0.01'],
    http_req_duration: ['p(95)<300'],
  },
});

export function setup() {
  return { run: Date.now().toString(36) };
}

export function stripeLoad(data) {
  stripe(`ms${data.run}_${exec.scenario.iterationInTest}`, 'stripe');
}

export function dodoLoad(data) {
  dodo(`md${data.run}_${exec.scenario.iterationInTest}`, 'dodo');
}
