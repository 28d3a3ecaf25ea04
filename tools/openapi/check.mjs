// SPDX-License-Identifier: MIT
// docs/openapi.yaml, checked: a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator,
// the specification's own JSON schemas), every $ref resolving; and docs/openapi.json, what
// the binary serves at /admin/openapi.json, made from it. `node check.mjs` checks both;
// `node check.mjs --write` writes the JSON again.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Validator } from "@seriousme/openapi-schema-validator";
import YAML from "yaml";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const yamlPath = join(root, "docs", "openapi.yaml");
const jsonPath = join(root, "docs", "openapi.json");
const doc = YAML.parse(readFileSync(yamlPath, "utf8"));
const v = new Validator();
const res = await v.validate(doc);
if (!res.valid) {
  console.error("docs/openapi.yaml is not valid OpenAPI " + v.version + ":");
  console.error(JSON.stringify(res.errors, null, 2));
  process.exit(1);
}
if (v.version !== "3.1") {
  console.error("docs/openapi.yaml: OpenAPI 3.1 expected, found " + v.version);
  process.exit(1);
}
const json = JSON.stringify(doc, null, 1) + "\n";
if (process.argv.includes("--write")) {
  writeFileSync(jsonPath, json);
} else if (readFileSync(jsonPath, "utf8") !== json) {
  console.error("docs/openapi.json is not docs/openapi.yaml's: run make openapi");
  process.exit(1);
}
const ops = Object.values(doc.paths).reduce((n, p) => n + Object.keys(p).length, 0);
console.log(`openapi: docs/openapi.yaml is valid OpenAPI ${v.version} (${Object.keys(doc.paths).length} paths, ${ops} operations); docs/openapi.json matches`);
