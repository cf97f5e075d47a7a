#!/usr/bin/env python3
"""Validates custom resources against a CRD's openAPIV3Schema, strictly.

Usage: validate_cr.py CRD.yaml RESOURCE.yaml...

Unknown fields are errors here (the API server would silently prune them, so a typo in a
resource would go unnoticed). Exits 1 and prints every error when any resource fails.
"""
import copy
import sys

import jsonschema
import yaml


def strict(schema):
    """Forbids properties the schema does not name, except where it allows any."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def main():
    crd = yaml.safe_load(open(sys.argv[1]))
    versions = {v["name"]: strict(copy.deepcopy(v["schema"]["openAPIV3Schema"])) for v in crd["spec"]["versions"]}
    kind = crd["spec"]["names"]["kind"]
    failed = False
    for path in sys.argv[2:]:
        for doc in yaml.safe_load_all(open(path)):
            if not doc or doc.get("kind") != kind:
                continue
            version = doc["apiVersion"].split("/")[-1]
            schema = copy.deepcopy(versions[version])
            # metadata is the API server's, not the CRD's, to validate.
            schema["properties"].pop("metadata", None)
            doc = {k: v for k, v in doc.items() if k != "metadata"}
            schema.setdefault("properties", {})["apiVersion"] = {"type": "string"}
            schema["properties"]["kind"] = {"type": "string"}
            errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
            for e in errors:
                failed = True
                print(f"{path}: {'.'.join(str(p) for p in e.path) or '<root>'}: {e.message}")
            if not errors:
                print(f"{path}: {doc.get('kind')} is valid")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
