#!/usr/bin/env python3
"""Vendor the OpenAPI schema of a CustomResourceDefinition as compact JSON for mlci's validation.

    scripts/vendor_crd.py CRD.yaml KIND VERSION OUT.json

Keeps ``spec.versions[VERSION].schema.openAPIV3Schema`` of the CRD that defines KIND, without the
``description`` texts (two thirds of the bytes, no part of validation); everything else is kept
as the operator publishes it. Note the source and its version in mlci_lib/schemas/crds/README.md.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        # A "description" that is text documents a schema; one that is a mapping is a property.
        return {k: _strip(v) for k, v in node.items() if not (k == "description" and isinstance(v, str))}
    if isinstance(node, list):
        return [_strip(item) for item in node]
    return node


def main(argv: list[str]) -> int:
    source, kind, version, out = argv
    with open(source, encoding="utf-8") as handle:
        for document in yaml.safe_load_all(handle):
            if not document or document.get("kind") != "CustomResourceDefinition":
                continue
            spec = document["spec"]
            if spec["names"]["kind"] != kind:
                continue
            for entry in spec["versions"]:
                if entry["name"] == version:
                    schema = {
                        "group": spec["group"],
                        "version": version,
                        "kind": kind,
                        "openAPIV3Schema": _strip(entry["schema"]["openAPIV3Schema"]),
                    }
                    with open(out, "w", encoding="utf-8") as target:
                        json.dump(schema, target, separators=(",", ":"), sort_keys=True)
                        target.write("\n")
                    return 0
    print(f"{source}: no CRD for {kind} {version}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
