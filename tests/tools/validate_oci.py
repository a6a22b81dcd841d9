#!/usr/bin/python3
"""Validates an OCI image layout against the image-spec JSON schemas that
Debian ships (golang-github-opencontainers-image-spec-dev), offline.

usage: validate_oci.py LAYOUT_DIR TAG
Checks oci-layout, index.json, then the tagged manifest and its config; every
$ref is resolved to the local schema files. Exit 0 when valid, 1 with the
error otherwise."""
import json
import os
import sys

import jsonschema

SCHEMA_DIR = "/usr/share/gocode/src/github.com/opencontainers/image-spec/schema"


def load_store():
    store = {}
    for name in os.listdir(SCHEMA_DIR):
        if name.endswith(".json"):
            with open(os.path.join(SCHEMA_DIR, name)) as f:
                schema = json.load(f)
            store[name] = schema
            if "id" in schema:
                store[schema["id"]] = schema
            if "$id" in schema:
                store[schema["$id"]] = schema
    return store


STORE = load_store()


def validate(schema_name, doc, what):
    schema = STORE[schema_name]
    resolver = jsonschema.RefResolver(base_uri="file://" + SCHEMA_DIR + "/", referrer=schema, store=STORE)
    try:
        jsonschema.validate(doc, schema, resolver=resolver)
    except jsonschema.ValidationError as e:
        sys.exit(f"{what}: {e.message} (at {'/'.join(map(str, e.absolute_path))})")


def blob(root, digest):
    algo, hexd = digest.split(":", 1)
    with open(os.path.join(root, "blobs", algo, hexd), "rb") as f:
        return json.loads(f.read())


def main():
    root, tag = sys.argv[1], sys.argv[2]
    with open(os.path.join(root, "oci-layout")) as f:
        validate("image-layout-schema.json", json.load(f), "oci-layout")
    with open(os.path.join(root, "index.json")) as f:
        index = json.load(f)
    validate("image-index-schema.json", index, "index.json")
    matches = [d for d in index["manifests"]
               if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
    if len(matches) != 1:
        sys.exit(f"index.json: {len(matches)} entries for tag {tag!r}")
    manifest = blob(root, matches[0]["digest"])
    validate("image-manifest-schema.json", manifest, "manifest")
    validate("config-schema.json", blob(root, manifest["config"]["digest"]), "config")
    print("valid")


if __name__ == "__main__":
    main()
