#!/usr/bin/env python3
"""Makes standalone Kubernetes JSON schemas for kubeconform from the ones kubernetes-validate
(PyPI) ships, with no download: its schemas share one `_definitions.json` through absolute
`$ref`s kubeconform cannot follow, so each kind a manifest uses gets its own file with the
definitions it needs copied in.

    k8s-schemas.py SCHEMA_ROOT VERSION OUT_DIR MANIFEST.yaml...
      writes OUT_DIR/v<VERSION>-standalone-strict/<kind><-group>-<version>.json
"""
import json
import os
import re
import sys

import yaml

# A ref into the shared definitions: from a kind's file, or between definitions.
REF = re.compile(r"^(?:/api/_definitions\.json)?#/\$defs/(.+)$")


def refs(node, found):
    """Rewrites the shared definitions' refs to local ones, collecting their names."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            m = REF.match(ref)
            if m:
                node["$ref"] = "#/$defs/" + m.group(1)
                found.add(m.group(1))
        for v in node.values():
            refs(v, found)
    elif isinstance(node, list):
        for v in node:
            refs(v, found)


def main():
    root, version, out = sys.argv[1], sys.argv[2], sys.argv[3]
    source = os.path.join(root, f"v{version}-local-strict")
    with open(os.path.join(source, "_definitions.json")) as f:
        definitions = json.load(f)["$defs"]
    target = os.path.join(out, f"v{version}-standalone-strict")
    os.makedirs(target, exist_ok=True)
    names = set()
    for path in sys.argv[4:]:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if not doc or "/" in doc["apiVersion"] and "." in doc["apiVersion"].split("/")[0] \
                        and not doc["apiVersion"].split("/")[0].endswith(".k8s.io"):
                    continue  # a custom resource: its schema comes from its CRD
                group, _, ver = doc["apiVersion"].rpartition("/")
                group = group.split(".")[0]
                names.add(f"{doc['kind'].lower()}{'-' + group if group else ''}-{ver}.json")
    for name in sorted(names):
        with open(os.path.join(source, name)) as f:
            schema = json.load(f)
        needed, done = set(), set()
        refs(schema, needed)
        defs = {}
        while needed - done:
            name_ = (needed - done).pop()
            done.add(name_)
            d = json.loads(json.dumps(definitions[name_]))
            refs(d, needed)
            defs[name_] = d
        schema["$defs"] = defs
        # Its id names the shared file layout; standalone, the file is its own base.
        schema.pop("$id", None)
        with open(os.path.join(target, name), "w") as f:
            json.dump(schema, f)
        print(os.path.join(target, name))


if __name__ == "__main__":
    main()
