#!/usr/bin/env python3
"""The few kubectl verbs the chart checks need, on $KUBECONFIG's server
(no kubectl is installed here):
  kube.py apply FILE...     create the objects in the files (CRDs here)
  kube.py namespace NAME    create a namespace
  kube.py get NAMESPACE     list the workloads, services and monitors in it
  kube.py has NAMESPACE RESOURCE...
                            fail unless each resource (plural, as
                            servicemonitors) has an object in the namespace
"""
import json
import os
import ssl
import sys
import time
import urllib.request

import yaml

cfg = yaml.safe_load(open(os.environ["KUBECONFIG"]))
server = cfg["clusters"][0]["cluster"]["server"]
token = cfg["users"][0]["user"]["token"]
ctx = ssl.create_default_context()
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the throwaway server's own certificate


def call(method, path, body=None):
    req = urllib.request.Request(server + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, context=ctx) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def main():
    verb = sys.argv[1]
    if verb == "apply":
        for f in sys.argv[2:]:
            for obj in yaml.safe_load_all(open(f)):
                if not obj:
                    continue
                code, out = call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", obj)
                if code not in (201, 409):
                    sys.exit(f"create {obj['metadata']['name']}: {code} {out.get('message')}")
                print(f"crd {obj['metadata']['name']}: {'created' if code == 201 else 'exists'}")
        time.sleep(2)  # the new APIs are served a moment later
    elif verb == "namespace":
        code, out = call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": sys.argv[2]}})
        if code not in (201, 409):
            sys.exit(f"namespace: {code} {out.get('message')}")
    elif verb == "has":
        ns = sys.argv[2]
        groups = {"servicemonitors": "/apis/monitoring.coreos.com/v1", "prometheusrules": "/apis/monitoring.coreos.com/v1",
                  "deployments": "/apis/apps/v1", "statefulsets": "/apis/apps/v1", "services": "/api/v1", "configmaps": "/api/v1"}
        for res in sys.argv[3:]:
            code, out = call("GET", f"{groups[res]}/namespaces/{ns}/{res}")
            names = [i["metadata"]["name"] for i in out.get("items", [])] if code == 200 else []
            if not names:
                sys.exit(f"no {res} in namespace {ns} ({code})")
            print(f"{res}: {', '.join(names)}")
    elif verb == "get":
        ns = sys.argv[2]
        for path in ["/apis/apps/v1/namespaces/%s/deployments", "/apis/apps/v1/namespaces/%s/statefulsets", "/api/v1/namespaces/%s/services",
                     "/apis/policy/v1/namespaces/%s/poddisruptionbudgets", "/apis/autoscaling/v2/namespaces/%s/horizontalpodautoscalers",
                     "/api/v1/namespaces/%s/configmaps", "/apis/monitoring.coreos.com/v1/namespaces/%s/servicemonitors",
                     "/apis/monitoring.coreos.com/v1/namespaces/%s/prometheusrules", "/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies"]:
            code, out = call("GET", path % ns)
            names = [i["metadata"]["name"] for i in out.get("items", [])] if code == 200 else [f"error {code}"]
            print(f"{path.split('/')[-1]:>26}: {', '.join(names) or '-'}")


if __name__ == "__main__":
    main()
