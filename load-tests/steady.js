// Steady load: a constant arrival rate of unique, signed Stripe payments.
//   k6 run -e RATE=300 -e DURATION=30s load-tests/steady.js
import exec from 'k6/execution';
import { common, stripe } from './lib/send.js';

const RATE = parseInt(__ENV.RATE || '300', 10);
export const options = Object.assign({}, common, {
  scenarios: {
    steady: {
      executor: 'constant-arrival-rate', rate: RATE, timeUnit: '1s', duration: __ENV.DURATION || '30s',
      preAllocatedVUs: 50, maxVUs: 200,
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    http_req_duration: ['p(95)<200', 'p(99)<500'],
    dropped_iterations: ['count<' + Math.ceil(RATE * 0.01 * 30)],
  },
});

export function setup() {
  return { run: Date.now().toString(36) };
}

export default function (data) {
  stripe(`st${data.run}_${exec.scenario.iterationInTest}`, 'steady');
}
