// Validates Kubernetes manifests (YAML or JSON) offline against the
// Kubernetes schemas that npm's kubernetes-models ships: the file's
// documents must be exactly the kinds given, in that order.
//
// Install once (node 20; node_modules is not committed):
//   npm ci --prefix tests/tools
// usage: node tests/tools/validate_k8s.mjs FILE KIND...
//   e.g. validate_k8s.mjs pod.yaml Pod
//        validate_k8s.mjs node.yaml DaemonSet Service
// Exit 0 when valid; 1 with the validation errors otherwise; 2 on bad usage
// or unreadable input.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { Pod, Service } from "kubernetes-models/v1";
import { DaemonSet } from "kubernetes-models/apps/v1";

// The kinds regdisk renders, with their apiVersion.
const kinds = {
  Pod: { apiVersion: "v1", model: Pod },
  Service: { apiVersion: "v1", model: Service },
  DaemonSet: { apiVersion: "apps/v1", model: DaemonSet },
};

function fail(code, message) {
  console.error(`validate_k8s: ${message}`);
  process.exit(code);
}

const [file, ...want] = process.argv.slice(2);
if (!file || want.length === 0 || want.some((k) => !(k in kinds))) {
  fail(2, `usage: validate_k8s.mjs FILE KIND... (KIND: ${Object.keys(kinds).join(", ")})`);
}
let objs;
try {
  // YAML 1.2 (a superset of JSON), no duplicate keys.
  const docs = parseAllDocuments(readFileSync(file, "utf8"), { uniqueKeys: true });
  if (docs.length !== want.length) fail(2, `want ${want.length} document(s), found ${docs.length}`);
  for (const d of docs) if (d.errors.length) fail(2, d.errors.map((e) => e.message).join("; "));
  objs = docs.map((d) => d.toJS());
} catch (e) {
  fail(2, e.message);
}
want.forEach((kind, i) => {
  const { apiVersion, model: Model } = kinds[kind];
  const obj = objs[i];
  if (obj?.apiVersion !== apiVersion || obj?.kind !== kind) {
    fail(1, `document ${i + 1}: apiVersion must be ${apiVersion} and kind ${kind}`);
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    fail(1, `document ${i + 1} (${kind}): ${e.message}`);
  }
});
console.log(`${want.join(", ")} ok`);
