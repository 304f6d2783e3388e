// Package e2e is MonitorMe's real-broker suite: three Apache Kafka brokers
// in KRaft mode started by kafka.sh (jars from Maven Central), the real
// monitorme binary as OS processes, kcat as an independent client, and
// SIGKILLs of processors, brokers and the embedded dev broker. It proves the
// delivery promises kfake cannot: acks=all with min.insync.replicas=2
// surviving a broker kill, and exactly-once alerts under crashes.
//
// The tests run only with MONITORME_E2E=1 (`make e2e`); `go test ./...`
// skips them, so the fast suite needs no Java.
package e2e
