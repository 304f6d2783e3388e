#!/usr/bin/env bash
# A local Kubernetes API server for the chart checks: Debian's etcd and a
# kube-apiserver built by tools.sh, on loopback, both stopped by PID.
#   apiserver.sh start DIR   start them (state in DIR), write DIR/kubeconfig
#   apiserver.sh stop DIR    stop what start started
set -euo pipefail
cd "$(dirname "$0")/../.."
cmd=${1:-}; dir=${2:-}
[ -n "$dir" ] || { sed -n '2,6p' "$0" >&2; exit 2; }
eval "$(charts/scripts/tools.sh paths)"
die() { echo "apiserver.sh: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

stop() {
	local f p
	for f in "$dir/apiserver.pid" "$dir/etcd.pid"; do
		p=$(cat "$f" 2>/dev/null || true)
		[ -n "$p" ] && kill "$p" 2>/dev/null || true
	done
	for f in "$dir/apiserver.pid" "$dir/etcd.pid"; do
		p=$(cat "$f" 2>/dev/null || true)
		for _ in $(seq 1 40); do [ -n "$p" ] && kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
		[ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
		rm -f "$f"
	done
	echo "api server: stopped" >&2
}

start() {
	stop >/dev/null 2>&1 || true
	rm -rf "$dir"; mkdir -p "$dir/certs"
	local etcd_port peer_port port token
	etcd_port=$(free_port); peer_port=$(free_port); port=$(free_port)
	etcd --data-dir "$dir/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
		--listen-peer-urls "http://127.0.0.1:$peer_port" > "$dir/etcd.log" 2>&1 &
	echo $! > "$dir/etcd.pid"
	openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
	openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
	token=$(openssl rand -hex 16)
	(umask 077; echo "$token,admin,admin,system:masters" > "$dir/tokens.csv")
	"$APISERVER" --etcd-servers "http://127.0.0.1:$etcd_port" --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
		--secure-port "$port" --cert-dir "$dir/certs" --token-auth-file "$dir/tokens.csv" --authorization-mode RBAC \
		--service-account-issuer https://kubernetes.default.svc --service-account-key-file "$dir/sa.pub" \
		--service-account-signing-key-file "$dir/sa.key" --service-cluster-ip-range 10.96.0.0/24 \
		--disable-admission-plugins ServiceAccount > "$dir/apiserver.log" 2>&1 &
	echo $! > "$dir/apiserver.pid"
	(umask 077; cat > "$dir/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
  - name: local
    cluster: {server: "https://127.0.0.1:$port", insecure-skip-tls-verify: true}
users:
  - name: admin
    user: {token: "$token"}
contexts:
  - name: local
    context: {cluster: local, user: admin}
current-context: local
KC
)
	for _ in $(seq 1 240); do
		if curl -sfk -H "Authorization: Bearer $token" "https://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
			echo "api server: https://127.0.0.1:$port (pid $(cat "$dir/apiserver.pid")), etcd pid $(cat "$dir/etcd.pid")" >&2
			return
		fi
		kill -0 "$(cat "$dir/apiserver.pid")" 2>/dev/null || { tail -20 "$dir/apiserver.log" >&2; die "kube-apiserver exited"; }
		sleep 0.5
	done
	tail -20 "$dir/apiserver.log" >&2
	die "kube-apiserver not ready within 120 s"
}

case "$cmd" in
	start) start ;;
	stop) stop ;;
	*) sed -n '2,6p' "$0" >&2; exit 2 ;;
esac
