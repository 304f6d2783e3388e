#!/usr/bin/env python3
"""Writes standalone Kubernetes JSON schemas for kubeconform, offline,
from PyPI's kubernetes-validate (its strict schemas): each kind's schema
with the definitions it refers to inlined (kubeconform does not follow
kubernetes-validate's "/api/_definitions.json" references).

And the schemas of the monitoring kinds the chart renders (ServiceMonitor,
PrometheusRule) from the prometheus-operator CRDs vendored in crds/: their
openAPIV3Schema, closed (additionalProperties false wherever properties
are listed) so that kubeconform -strict refuses a misspelt field there too.

usage: schemas.py OUT_DIR VERSION...   (VERSION like 1.29.0)
"""
import json
import os
import sys

import kubernetes_validate
import yaml

KINDS = ["deployment-apps-v1", "statefulset-apps-v1", "service-v1", "configmap-v1", "pod-v1", "job-batch-v1",
         "poddisruptionbudget-policy-v1", "horizontalpodautoscaler-autoscaling-v2", "networkpolicy-networking-v1",
         "secret-v1"]

src = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
out = sys.argv[1]
for version in sys.argv[2:]:
    d = os.path.join(src, f"v{version}-local-strict")
    if not os.path.isdir(d):
        sys.exit(f"kubernetes-validate has no schemas of Kubernetes {version}")
    defs = json.load(open(os.path.join(d, "_definitions.json")))
    defs_text = json.dumps(defs.get("$defs", defs.get("definitions"))).replace('"/api/_definitions.json#/$defs/', '"#/$defs/')
    target = os.path.join(out, f"v{version}-strict")
    os.makedirs(target, exist_ok=True)
    for kind in KINDS:
        text = open(os.path.join(d, kind + ".json")).read().replace('"/api/_definitions.json#/$defs/', '"#/$defs/')
        schema = json.loads(text)
        schema["$defs"] = json.loads(defs_text)
        json.dump(schema, open(os.path.join(target, kind + ".json"), "w"))


def closed(node):
    """The CRD schema with unknown properties refused where it lists them."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
        for v in node.values():
            closed(v)
    elif isinstance(node, list):
        for v in node:
            closed(v)
    return node


crds = os.path.join(os.path.dirname(os.path.abspath(__file__)), "crds")
for f in sorted(os.listdir(crds)):
    for crd in yaml.safe_load_all(open(os.path.join(crds, f))):
        if not crd:
            continue
        group = crd["spec"]["group"].split(".")[0]
        for v in crd["spec"]["versions"]:
            schema = closed(v["schema"]["openAPIV3Schema"])
            schema["properties"]["apiVersion"] = {"type": "string", "enum": [crd["spec"]["group"] + "/" + v["name"]]}
            schema["properties"]["kind"] = {"type": "string", "enum": [crd["spec"]["names"]["kind"]]}
            schema["properties"]["metadata"] = {"type": "object"}
            name = f'{crd["spec"]["names"]["kind"].lower()}-{group}-{v["name"]}.json'
            for version in sys.argv[2:]:
                json.dump(schema, open(os.path.join(out, f"v{version}-strict", name), "w"))
