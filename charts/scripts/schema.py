#!/usr/bin/env python3
"""Derives charts/monitorme/values.schema.json from values.yaml: every key
typed, objects closed (unknown keys refused) except free-form maps, enums
and patterns where a value has a fixed set or shape, each key's
"# --" comment as its description.

usage: schema.py [--check]   --check: exit 1 if the committed schema differs,
                             or a value has no "# --" description
"""
import json
import re
import sys

import yaml

CHART = "charts/monitorme"
FREE = {"resources", "nodeSelector", "affinity", "labels", "podSecurityContext", "securityContext"}
OBJECT_ITEMS = {"extraEnv", "imagePullSecrets", "from", "tolerations"}
ENUMS = {
    "logLevel": ["debug", "info", "warn", "error"],
    "logFormat": ["json", "text"],
    "image.pullPolicy": ["Always", "IfNotPresent", "Never"],
    "kafka.sasl.mechanism": ["", "SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"],
    "provisioning.mode": ["job", "roles", "none"],
    "clickhouse.protocol": ["native", "http"],
    "auth.mode": ["tokens", "oidc", "insecure"],
    "auth.metricsAccess": ["open", "admin", "off"],
    "rules.engine": ["clinical", "threshold"],
    "topologySpread.whenUnsatisfiable": ["ScheduleAnyway", "DoNotSchedule"],
    "ingest.service.type": ["ClusterIP", "NodePort", "LoadBalancer"],
    "api.service.type": ["ClusterIP", "NodePort", "LoadBalancer"],
}
HOSTPORT = {"type": "string", "pattern": "^[^:\\s]+:[0-9]+$"}


def descriptions(path):
    desc, stack, pending = {}, [], []
    for line in open(path):
        m = re.match(r"^\s*# -- (.*)", line)
        if m:
            pending = [m.group(1)]
            continue
        m = re.match(r"^\s*#\s?(.*)", line)
        if m and pending:
            pending.append(m.group(1))
            continue
        m = re.match(r"^(\s*)([A-Za-z0-9_]+):", line)
        if m:
            stack = stack[: len(m.group(1)) // 2] + [m.group(2)]
            if pending:
                desc[".".join(stack)] = " ".join(pending)
            pending = []
    return desc


def schema(v, path, desc):
    s, key = {}, path.split(".")[-1]
    if path in desc:
        s["description"] = desc[path]
    if isinstance(v, bool):
        s["type"] = "boolean"
    elif isinstance(v, int):
        s.update(type="integer", minimum=0)
    elif isinstance(v, str):
        s["type"] = "string"
    elif isinstance(v, list):
        s.update(type="array", items={"type": "object" if key in OBJECT_ITEMS else "string"})
    elif isinstance(v, dict):
        s["type"] = "object"
        if key in FREE:
            if key == "labels":
                s["additionalProperties"] = {"type": "string"}
            return s
        s["properties"] = {k: schema(x, f"{path}.{k}" if path else k, desc) for k, x in v.items()}
        s["additionalProperties"] = False
    if path in ENUMS:
        s["enum"] = ENUMS[path]
    return s


def build():
    vals = yaml.safe_load(open(f"{CHART}/values.yaml"))
    desc = descriptions(f"{CHART}/values.yaml")
    root = {"$schema": "https://json-schema.org/draft-07/schema#", "title": "MonitorMe chart values"}
    root.update(schema(vals, "", desc))
    p = root["properties"]
    k = p["kafka"]["properties"]
    k["brokers"].update(minItems=1, items=HOSTPORT)
    k["partitions"]["minimum"] = 1
    k["replicationFactor"]["minimum"] = 1
    p["clickhouse"]["properties"]["addr"].update(minItems=1, items=HOSTPORT)
    for r in ["ingest", "process", "api"]:
        p[r]["properties"]["replicas"]["minimum"] = 1
    for r in ["ingest", "api"]:
        p[r]["properties"]["service"]["properties"]["port"].update(minimum=1, maximum=65535)
    p["process"]["properties"]["transactionTimeout"]["pattern"] = "^[0-9]+(ms|s|m)$"
    p["serviceMonitor"]["properties"]["interval"]["pattern"] = "^[0-9]+(s|m)$"
    p["auth"]["properties"]["corsOrigins"]["items"] = {"type": "string", "pattern": "^https?://[^/*]+$"}
    # Every leaf needs a description.
    undocumented = []

    def walk(v, path):
        if isinstance(v, dict) and path.split(".")[-1] not in FREE:
            for key, x in v.items():
                walk(x, f"{path}.{key}" if path else key)
        elif path not in desc:
            undocumented.append(path)

    walk(vals, "")
    return json.dumps(root, indent=2) + "\n", undocumented


def main():
    text, undocumented = build()
    path = f"{CHART}/values.schema.json"
    if "--check" in sys.argv:
        bad = False
        if undocumented:
            print("values without a '# --' description:", ", ".join(undocumented))
            bad = True
        if open(path).read() != text:
            print(f"{path} is not what values.yaml gives: run charts/scripts/schema.py")
            bad = True
        sys.exit(1 if bad else 0)
    open(path, "w").write(text)


if __name__ == "__main__":
    main()
