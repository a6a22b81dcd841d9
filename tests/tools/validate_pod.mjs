// Validates a Pod manifest (YAML or JSON) offline against the Kubernetes
// schemas that npm's kubernetes-models ships.
//
// Install once (node 20; node_modules is not committed):
//   npm ci --prefix tests/tools
// usage: node tests/tools/validate_pod.mjs POD.yaml
// Exit 0 when valid; 1 with the validation errors otherwise; 2 on bad usage
// or unreadable input.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { Pod } from "kubernetes-models/v1";

function fail(code, message) {
  console.error(`validate_pod: ${message}`);
  process.exit(code);
}

if (process.argv.length !== 3) fail(2, "usage: validate_pod.mjs POD.yaml");
let obj;
try {
  // YAML 1.2 (a superset of JSON); exactly one document, no duplicate keys.
  const docs = parseAllDocuments(readFileSync(process.argv[2], "utf8"), { uniqueKeys: true });
  if (docs.length !== 1) fail(2, `want one document, found ${docs.length}`);
  if (docs[0].errors.length) fail(2, docs[0].errors.map((e) => e.message).join("; "));
  obj = docs[0].toJS();
} catch (e) {
  fail(2, e.message);
}
if (obj?.apiVersion !== "v1" || obj?.kind !== "Pod") fail(1, "apiVersion must be v1 and kind Pod");
try {
  new Pod(obj).validate();
} catch (e) {
  fail(1, e.message);
}
console.log("pod ok");
