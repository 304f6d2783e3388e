#!/usr/bin/env bash
# Apache Kafka (KRaft) on loopback for MonitorMe's end-to-end tests.
#
#   e2e/kafka.sh fetch          download the broker jars from Maven Central (cached)
#   e2e/kafka.sh up [N] [--secure]
#                               fresh cluster of N (1 or 3) combined broker+controller nodes;
#                               --secure: SASL_SSL for clients (SCRAM users made at format
#                               time, KIP-900), mTLS between brokers and controllers, the
#                               StandardAuthorizer denying all that no ACL allows, and
#                               certificates made here by openssl (nothing checked in)
#   e2e/kafka.sh users          print the SCRAM users of a --secure cluster; each one's
#                               password is in $RUN/secrets/<user>.pw, the CA in $RUN/tls/ca.pem
#   e2e/kafka.sh down           stop every node (SIGTERM, then SIGKILL) by PID
#   e2e/kafka.sh kill ID        SIGKILL node ID (1-based)
#   e2e/kafka.sh start ID       restart a stopped node on its existing data
#   e2e/kafka.sh brokers        print the bootstrap list
#   e2e/kafka.sh pids           print the running nodes' process ids (for CPU time)
#   e2e/kafka.sh status         print each node's state
#
# Needs only Java 17 and Maven. Jars are cached in e2e/.cache, cluster state
# lives in e2e/.run (both git-ignored). Ports: KAFKA_PORT_BASE (29092) + ID - 1
# for brokers, + 100 for controllers.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
VERSION=3.9.1
LIBS=$HERE/.cache/kafka-$VERSION/libs
RUN=${KAFKA_RUN_DIR:-$HERE/.run}
BASE=${KAFKA_PORT_BASE:-29092}
HEAP=${KAFKA_HEAP:-512m}

die() { echo "kafka.sh: $*" >&2; exit 1; }

fetch() {
	if [ -f "$LIBS/.complete" ]; then return; fi
	command -v java >/dev/null || die "java not found (Java 17 is required)"
	command -v mvn >/dev/null || die "mvn not found (Maven is required to fetch the broker jars)"
	echo "fetching Apache Kafka $VERSION from Maven Central into $LIBS" >&2
	rm -rf "$LIBS"
	mvn -q -B -f "$HERE/kafka/pom.xml" dependency:copy-dependencies \
		-DoutputDirectory="$LIBS" -DincludeScope=runtime >&2 || die "maven fetch failed"
	ls "$LIBS"/kafka_2.13-"$VERSION".jar >/dev/null || die "kafka jar missing after fetch"
	touch "$LIBS/.complete"
}

java_run() { java -Xms128m -Xmx"$HEAP" -XX:+UseG1GC -Djava.awt.headless=true -cp "$LIBS/*" "$@"; }

nodes() { cat "$RUN/nodes" 2>/dev/null || echo 0; }
broker_port() { echo $((BASE + $1 - 1)); }
controller_port() { echo $((BASE + 100 + $1 - 1)); }
internal_port() { echo $((BASE + 200 + $1 - 1)); }

# The SCRAM users of a --secure cluster: one per role, the suite's admin
# (a super user) and one without any ACL.
USERS="admin ingest process api sink noacl"

certs() { # a CA and one certificate for every node, for 127.0.0.1
	local d=$RUN/tls
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=monitorme-e2e-ca" \
		-keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null || die "openssl: CA"
	openssl req -newkey rsa:2048 -nodes -subj "/CN=kafka-node" -keyout "$d/node.key" -out "$d/node.csr" 2>/dev/null || die "openssl: node key"
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' > "$d/node.ext"
	openssl x509 -req -in "$d/node.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
		-extfile "$d/node.ext" -out "$d/node.crt" 2>/dev/null || die "openssl: node certificate"
	# A PEM key store: the PKCS#8 key, then the chain.
	openssl pkcs8 -topk8 -nocrypt -in "$d/node.key" > "$d/node.pem" && cat "$d/node.crt" >> "$d/node.pem"
	chmod 600 "$d"/*.key "$d/node.pem"
}

scram_args() { # --add-scram for every user, with a new random password each
	local u pw
	mkdir -p "$RUN/secrets"; chmod 700 "$RUN/secrets"
	for u in $USERS; do
		pw=$(openssl rand -hex 16)
		(umask 077; echo "$pw" > "$RUN/secrets/$u.pw")
		printf -- '--add-scram\nSCRAM-SHA-256=[name=%s,password=%s]\n' "$u" "$pw"
	done
}

pid_of() { cat "$RUN/node$1/pid" 2>/dev/null || true; }
alive() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

configure() { # id n cluster_id
	local id=$1 n=$2 voters="" i rf isr
	for i in $(seq 1 "$n"); do voters="$voters${voters:+,}$i@127.0.0.1:$(controller_port "$i")"; done
	rf=$(( n < 3 ? n : 3 )); isr=$(( n < 2 ? 1 : 2 ))
	mkdir -p "$RUN/node$id/data"
	if [ -f "$RUN/secure" ]; then
		# Clients: SASL_SSL with SCRAM. Brokers and controllers: mTLS
		# with the node certificate, principal User:kafka-node (the
		# mapping rule takes the CN), so no listener needs ANONYMOUS:
		# SCRAM cannot serve controllers, whose credentials live in the
		# metadata log they serve.
		cat > "$RUN/node$id/server.properties" <<PROPS
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=SASL_SSL://127.0.0.1:$(broker_port "$id"),INTERNAL://127.0.0.1:$(internal_port "$id"),CONTROLLER://127.0.0.1:$(controller_port "$id")
advertised.listeners=SASL_SSL://127.0.0.1:$(broker_port "$id"),INTERNAL://127.0.0.1:$(internal_port "$id")
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
listener.security.protocol.map=SASL_SSL:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.internal.ssl.client.auth=required
listener.name.controller.ssl.client.auth=required
ssl.keystore.type=PEM
ssl.keystore.location=$RUN/tls/node.pem
ssl.truststore.type=PEM
ssl.truststore.location=$RUN/tls/ca.pem
ssl.enabled.protocols=TLSv1.2,TLSv1.3
ssl.principal.mapping.rules=RULE:^CN=([^,]+).*\$/\$1/,DEFAULT
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:kafka-node;User:admin
log.dirs=$RUN/node$id/data
PROPS
	else
		cat > "$RUN/node$id/server.properties" <<PROPS
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(broker_port "$id"),CONTROLLER://127.0.0.1:$(controller_port "$id")
advertised.listeners=PLAINTEXT://127.0.0.1:$(broker_port "$id")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$RUN/node$id/data
PROPS
	fi
	cat >> "$RUN/node$id/server.properties" <<PROPS
num.partitions=1
default.replication.factor=$rf
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
unclean.leader.election.enable=false
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
replica.lag.time.max.ms=10000
PROPS
}

start_node() { # id
	local id=$1 dir=$RUN/node$1
	[ -f "$dir/server.properties" ] || die "node $id was never set up (run: up)"
	if alive "$id"; then return; fi
	# setsid: the node outlives this script but not a `down`.
	KAFKA_LOG="$dir/server.log" setsid nohup java -Xms128m -Xmx"$HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
		-Dlog4j.configuration="file:$HERE/kafka/log4j.properties" -Dkafka.logs.file="$dir/server.log" \
		-cp "$LIBS/*" kafka.Kafka "$dir/server.properties" > "$dir/stdout.log" 2>&1 < /dev/null &
	echo $! > "$dir/pid"
}

wait_node() { # id: until the node says it started, or 90s
	local id=$1 dir=$RUN/node$1 i
	for i in $(seq 1 180); do
		if grep -q "Kafka Server started" "$dir/server.log" 2>/dev/null && \
			(exec 3<>"/dev/tcp/127.0.0.1/$(broker_port "$id")") 2>/dev/null; then
			return 0
		fi
		alive "$id" || { tail -30 "$dir/stdout.log" "$dir/server.log" >&2 2>/dev/null; die "node $id exited while starting"; }
		sleep 0.5
	done
	die "node $id not started within 90s (see $dir/server.log)"
}

up() {
	local n=${1:-3} secure=${2:-} cid i
	local -a scram=()
	[ "$n" = 1 ] || [ "$n" = 3 ] || die "up: N must be 1 or 3, not $n"
	[ -z "$secure" ] || [ "$secure" = --secure ] || die "up: unknown option $secure"
	fetch
	down >/dev/null 2>&1 || true
	rm -rf "$RUN"; mkdir -p "$RUN"
	echo "$n" > "$RUN/nodes"
	if [ -n "$secure" ]; then
		command -v openssl >/dev/null || die "openssl not found (needed by --secure)"
		touch "$RUN/secure"
		certs
		mapfile -t scram < <(scram_args)
	fi
	cid=$(java_run kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
	for i in $(seq 1 "$n"); do
		configure "$i" "$n"
		# The passwords reach the format tool as arguments of this
		# short-lived local process only; they are never logged.
		java_run kafka.tools.StorageTool format -t "$cid" -c "$RUN/node$i/server.properties" "${scram[@]}" > "$RUN/node$i/format.log" 2>&1 || { cat "$RUN/node$i/format.log" >&2; die "format of node $i failed"; }
	done
	for i in $(seq 1 "$n"); do : > "$RUN/node$i/server.log"; start_node "$i"; done
	for i in $(seq 1 "$n"); do wait_node "$i"; done
	echo "kafka: $n node(s) up${secure:+ (SASL_SSL, ACLs)}: $(brokers)" >&2
}

down() {
	local n i p waited
	n=$(nodes)
	for i in $(seq 1 "$n"); do p=$(pid_of "$i"); [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
	for waited in $(seq 1 40); do
		local any=0
		for i in $(seq 1 "$n"); do alive "$i" && any=1; done
		[ $any = 0 ] && break
		sleep 0.5
	done
	for i in $(seq 1 "$n"); do p=$(pid_of "$i"); [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true; rm -f "$RUN/node$i/pid"; done
	echo "kafka: down" >&2
}

brokers() {
	local n i out=""
	n=$(nodes)
	for i in $(seq 1 "$n"); do out="$out${out:+,}127.0.0.1:$(broker_port "$i")"; done
	echo "$out"
}

pids() {
	local n i out=""
	n=$(nodes)
	for i in $(seq 1 "$n"); do alive "$i" && out="$out${out:+,}$(pid_of "$i")"; done
	echo "$out"
}

status() {
	local n i
	n=$(nodes)
	for i in $(seq 1 "$n"); do
		if alive "$i"; then echo "node $i up (pid $(pid_of "$i"), 127.0.0.1:$(broker_port "$i"))"; else echo "node $i down"; fi
	done
}

cmd=${1:-}; shift || true
case "$cmd" in
	fetch) fetch ;;
	up) up "${1:-3}" "${2:-}" ;;
	down) down ;;
	kill) [ -n "${1:-}" ] || die "kill: node ID required"; p=$(pid_of "$1"); [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true; rm -f "$RUN/node$1/pid" ;;
	start) [ -n "${1:-}" ] || die "start: node ID required"; : > "$RUN/node$1/server.log"; start_node "$1"; wait_node "$1" ;;
	brokers) brokers ;;
	pids) pids ;;
	status) status ;;
	users) echo "$USERS" ;;
	*) sed -n '2,21p' "$0" >&2; exit 2 ;;
esac
