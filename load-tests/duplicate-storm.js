// A duplicate storm: providers retrying a handful of payments over and over
// (each retry freshly signed, as providers do), mixed with unique payments.
// Every delivery must get 200; downstream, each storm payment is published
// once (the fault tests in tests/it/faults.rs count that).
//   k6 run load-tests/duplicate-storm.js
import exec from 'k6/execution';
import { common, stripe } from './lib/send.js';

export const options = Object.assign({}, common, {
  scenarios: {
    storm: { executor: 'constant-arrival-rate', rate: 200, timeUnit: '1s', duration: '15s', preAllocatedVUs: 40, exec: 'storm' },
    unique: { executor: 'constant-arrival-rate', rate: 50, timeUnit: '1s', duration: '15s', preAllocatedVUs: 10, exec: 'unique' },
  },
  thresholds: {
    'checks{kind:storm}': ['rate>0.99'],
    'checks{kind:unique}': ['rate>0.99'],
    http_req_duration: ['p(95)<300'],
  },
});

export function setup() {
  return { run: Date.now().toString(36) };
}

export function storm(data) {
  // Five payments, each delivered hundreds of times.
  stripe(`ds${data.run}_${exec.scenario.iterationInTest % 5}`, 'storm');
}

export function unique(data) {
  stripe(`du${data.run}_${exec.scenario.iterationInTest}`, 'unique');
}
