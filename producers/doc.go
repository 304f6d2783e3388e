// Package producers is where readings enter MonitorMe: the ingest HTTP
// handler (POST /v1/vitals), the idempotent acks=all producer behind it
// (which builds and owns its Kafka client, writes acknowledgements too, and
// flushes on Close), and the device simulator that stands in for a ward of
// bedside monitors. Records are encoded by schemas/records.go.
//
// The promise of this package is that a 202 from ingest means every reading
// of the request is on the broker, acknowledged by all in-sync replicas, and
// that anything short of that is an error the client can see and retry.
package producers
