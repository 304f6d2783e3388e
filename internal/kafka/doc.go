// Package kafka holds what every MonitorMe role needs to talk to a
// Kafka-protocol broker (Redpanda, Apache Kafka, or the embedded kfake):
// the connection and topic settings with their flags, the client options
// derived from them, and idempotent topic provisioning with kadm.
//
// It deliberately knows nothing of readings or alerts: components add their
// own producer and consumer options on top of [Config.ClientOpts].
package kafka
