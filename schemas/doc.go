// Package schemas defines the messages MonitorMe writes to its topics: the
// vital reading (vital-reading.v1) and the alert event (alert-event.v1).
//
// Each message has a JSON Schema file beside this package (embedded, served
// by the API and checked against the Go types in tests) and a Go type. The
// schema name and version travel in the record header [HeaderSchema], so a
// reader can tell a v1 value from a later one without parsing it first, and a
// producer that leaves the header out (kcat, a gateway) is read as v1.
//
// Values are JSON because the producers are bedside gateways and scripts that
// speak HTTP and JSON; the topics carry the normalized form the ingest API
// validated, never the client's raw bytes.
package schemas
