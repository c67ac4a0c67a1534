// Driven by shopify_vectors.py: reads {"sign": [[body, secret]...],
// "validate": [[body, headers, [secret...]]...]} on stdin and prints
// {"sign": [base64...], "validate": [bool...]}. Signs with the test helper
// `getHmac`, judges with `shopifyApi(...).webhooks.validate` (web-api adapter);
// with several secrets a request is valid if any one validates it.
require("@shopify/shopify-api/adapters/web-api");
const { shopifyApi, ApiVersion, LogSeverity } = require("@shopify/shopify-api");
const { getHmac } = require("@shopify/shopify-api/test-helpers");

async function valid(body, headers, secret) {
  const shopify = shopifyApi({
    apiKey: "payhook-vectors", apiSecretKey: secret, scopes: [], hostName: "payhook.example",
    apiVersion: ApiVersion.July25, isEmbeddedApp: false, logger: { level: LogSeverity.Error, log: async () => {} },
  });
  const rawRequest = new Request("https://payhook.example/webhooks/shopify", { method: "POST", headers, body });
  const result = await shopify.webhooks.validate({ rawBody: body, rawRequest });
  return result.valid === true;
}

async function main() {
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const job = JSON.parse(input);
  const sign = job.sign.map(([body, secret]) => getHmac(body, secret));
  const validate = [];
  for (const [body, headers, secrets] of job.validate) {
    let ok = false;
    for (const secret of secrets) ok = ok || (await valid(body, headers, secret));
    validate.push(ok);
  }
  process.stdout.write(JSON.stringify({ sign, validate }));
}

main().catch((e) => { console.error(e); process.exit(1); });
