#!/usr/bin/env bash
# Installs the chart checks' tools, pinned, into the git-ignored
# .cache/chart-tools (kept between runs on one machine):
#   helm            helm.sh/helm/v3 from the Go module proxy (~10 min cold)
#   kubeconform     from the Go module proxy (seconds)
#   ct              helm/chart-testing, built in a wrapper module pinning it
#                   (go install ...@latest is refused by the proxy), with
#                   yamllint and yamale (PyPI) in a virtualenv beside it
#   kubernetes-validate  PyPI, for its offline Kubernetes JSON schemas
#   kube-apiserver  k8s.io/kubernetes, staging modules replaced (~11 min cold)
#   etcd            Debian's etcd-server (apt-get), or what PATH has
# Usage: charts/scripts/tools.sh [helm|kubeconform|apiserver|etcd|all]
set -euo pipefail
cd "$(dirname "$0")/../.."
HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.7.0
KUBE_VERSION=v1.34.4
CT_VERSION=v3.14.0
DIR=$PWD/.cache/chart-tools
mkdir -p "$DIR"
die() { echo "tools.sh: $*" >&2; exit 1; }

get_helm() {
	local d=$DIR/helm-$HELM_VERSION
	[ -x "$d/helm" ] && return
	echo "building helm $HELM_VERSION (about 10 min the first time)" >&2
	GOBIN=$d go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

get_kubeconform() {
	local d=$DIR/kubeconform-$KUBECONFORM_VERSION
	[ -x "$d/kubeconform" ] && return
	GOBIN=$d go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
}

get_ct() {
	local d=$DIR/ct-$CT_VERSION
	if [ ! -x "$d/ct" ]; then
		local w=$DIR/ct-build-$CT_VERSION
		rm -rf "$w"; mkdir -p "$w"
		(
			cd "$w"
			go mod init ctbuild >/dev/null 2>&1
			printf 'package main\n\nimport _ "github.com/helm/chart-testing/v3/ct/cmd"\n' > tools.go
			GOFLAGS=-mod=mod go get "github.com/helm/chart-testing/v3@$CT_VERSION" >&2
			GOFLAGS=-mod=mod go build -o "$d/ct" github.com/helm/chart-testing/v3/ct >&2
		)
	fi
	get_venv
}

get_venv() {
	local v=$DIR/venv
	[ -x "$v/bin/yamllint" ] && [ -x "$v/bin/yamale" ] && "$v/bin/python" -c 'import kubernetes_validate' 2>/dev/null && return
	python3 -m venv "$v"
	"$v/bin/pip" install -q yamllint==1.35.1 yamale==5.2.1 kubernetes-validate==1.37.0 PyYAML
}

# kube-apiserver: k8s.io/kubernetes is not meant to be a module
# dependency (its staging modules are v0.0.0 in its go.mod), so a small
# wrapper module requires it and replaces each staging module with the
# matching v0.x release.
get_apiserver() {
	local d=$DIR/kube-apiserver-$KUBE_VERSION
	# A build without version ldflags reports v0.0.0-master, which charts'
	# kubeVersion constraints refuse.
	[ -x "$d/kube-apiserver" ] && "$d/kube-apiserver" --version 2>/dev/null | grep -q "$KUBE_VERSION" && return
	echo "building kube-apiserver $KUBE_VERSION (about 11 min the first time)" >&2
	local w=$DIR/kube-build-$KUBE_VERSION
	rm -rf "$w"; mkdir -p "$w"
	local staging=v0.${KUBE_VERSION#v1.}
	(
		cd "$w"
		go mod init kubebuild >/dev/null 2>&1
		cat > main.go <<'GO'
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() { os.Exit(cli.Run(app.NewAPIServerCommand())) }
GO
		go mod edit -require "k8s.io/kubernetes@$KUBE_VERSION"
		for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider cluster-bootstrap \
			code-generator component-base component-helpers controller-manager cri-api cri-client csi-translation-lib \
			dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy \
			kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission sample-apiserver \
			sample-cli-plugin sample-controller; do
			go mod edit -replace "k8s.io/$m=k8s.io/$m@$staging"
		done
		GOFLAGS=-mod=mod go mod tidy >&2
		local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
		local v=k8s.io/component-base/version
		go build -ldflags "-X $v.gitVersion=$KUBE_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean" \
			-o "$d/kube-apiserver" . >&2
	)
}

get_etcd() {
	command -v etcd >/dev/null && return
	if command -v apt-get >/dev/null; then
		(apt-get install -y etcd-server >/dev/null 2>&1 || sudo apt-get install -y etcd-server >/dev/null 2>&1) || true
	fi
	command -v etcd >/dev/null || die "etcd not found and Debian's etcd-server could not be installed"
}

case "${1:-all}" in
	helm) get_helm ;;
	kubeconform) get_kubeconform ;;
	ct) get_ct ;;
	venv) get_venv ;;
	apiserver) get_apiserver ;;
	etcd) get_etcd ;;
	all) get_kubeconform; get_venv; get_helm; get_ct; get_etcd; get_apiserver ;;
	paths) echo "HELM=$DIR/helm-$HELM_VERSION/helm KUBECONFORM=$DIR/kubeconform-$KUBECONFORM_VERSION/kubeconform CT=$DIR/ct-$CT_VERSION/ct APISERVER=$DIR/kube-apiserver-$KUBE_VERSION/kube-apiserver VENV=$DIR/venv" ;;
	*) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
