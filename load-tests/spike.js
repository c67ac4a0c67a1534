// A spike: quiet, then 10x for a while, then quiet again. payhook must keep
// answering (2xx, or 503 with Retry-After under overload: never a hang).
//   k6 run -e PEAK=1000 load-tests/spike.js
import exec from 'k6/execution';
import { common, stripe } from './lib/send.js';

const PEAK = parseInt(__ENV.PEAK || '1000', 10);
export const options = Object.assign({}, common, {
  scenarios: {
    spike: {
      executor: 'ramping-arrival-rate', startRate: PEAK / 10, timeUnit: '1s', preAllocatedVUs: 100, maxVUs: 400,
      stages: [
        { duration: '5s', target: PEAK / 10 },
        { duration: '2s', target: PEAK },
        { duration: '10s', target: PEAK },
        { duration: '2s', target: PEAK / 10 },
        { duration: '5s', target: PEAK / 10 },
      ],
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.02'],
    http_req_duration: ['p(99)<2000'],
  },
});

export function setup() {
  return { run: Date.now().toString(36) };
}

export default function (data) {
  stripe(`sp${data.run}_${exec.scenario.iterationInTest}`, 'spike');
}
