package schemas

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Record headers every MonitorMe producer sets.
const (
	// HeaderSchema names the value's schema and version, e.g.
	// "vital-reading.v1". A record without it is read as the v1 of the
	// topic's message, so a plain Kafka client can produce readings.
	HeaderSchema = "monitorme-schema"
	// HeaderError, on a dead-letter record, says why it was rejected.
	HeaderError = "monitorme-error"
	// HeaderSource, on a dead-letter record, is "topic/partition/offset"
	// of the original.
	HeaderSource = "monitorme-source"
)

// Schema names and versions.
const (
	ReadingV1 = "vital-reading.v1"
	AlertV1   = "alert-event.v1"
)

// Files holds the JSON Schema documents, named <schema>.schema.json.
//
//go:embed *.schema.json
var Files embed.FS

// ErrUnsupportedVersion is returned for a record whose schema header names
// a schema or version this build cannot read.
var ErrUnsupportedVersion = errors.New("unsupported schema version")

// DecodeReadingRecord decodes a vitals record value given its schema header
// ("" for none). It validates the reading the same way ingest does except
// for the future-time check, which only makes sense at receive time: a
// record that fails here was produced around the ingest API and belongs in
// the dead-letter topic.
func DecodeReadingRecord(schema string, value []byte) (Reading, error) {
	var r Reading
	if schema != "" && schema != ReadingV1 {
		return r, fmt.Errorf("%w: %q", ErrUnsupportedVersion, schema)
	}
	errs := decodeItem(value, &r, farFuture)
	if errs != nil {
		return r, &BatchError{Items: errs}
	}
	return r, nil
}

// DecodeAlert decodes an alert-event.v1 value.
func DecodeAlert(schema string, value []byte) (Alert, error) {
	var a Alert
	if schema != "" && schema != AlertV1 {
		return a, fmt.Errorf("%w: %q", ErrUnsupportedVersion, schema)
	}
	if err := json.Unmarshal(value, &a); err != nil {
		return a, fmt.Errorf("decode %s: %w", AlertV1, err)
	}
	return a, nil
}

// farFuture disables the receive-time future check for records already on
// a topic.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
