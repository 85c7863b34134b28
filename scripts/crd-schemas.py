#!/usr/bin/env python3
"""Turns CustomResourceDefinitions into the JSON schemas kubeconform validates custom resources
against, strictly (no field a CRD does not define). Used for the prometheus-operator CRDs the
chart's ServiceMonitor and PrometheusRule follow; see scripts/crd-schemas.sh.

    crd-schemas.py OUT_DIR CRD.yaml...   writes OUT_DIR/<group>/<kind>_<version>.json
"""
import json
import os
import sys

import yaml


def strict(schema):
    """Refuses unknown fields in every object that lists its fields."""
    if isinstance(schema, dict):
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def main():
    out = sys.argv[1]
    for path in sys.argv[2:]:
        with open(path) as f:
            crd = yaml.safe_load(f)
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"].lower()
        for version in crd["spec"]["versions"]:
            schema = strict(version["schema"]["openAPIV3Schema"])
            os.makedirs(os.path.join(out, group), exist_ok=True)
            target = os.path.join(out, group, f"{kind}_{version['name']}.json")
            with open(target, "w") as f:
                json.dump(schema, f, indent=1, sort_keys=True)
                f.write("\n")
            print(target)


if __name__ == "__main__":
    main()
