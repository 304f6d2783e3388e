package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrMalformed is returned by DecodeBatch when the body as a whole is not a
// JSON array (or NDJSON stream) of objects, so no item can be told apart.
var ErrMalformed = errors.New("malformed batch")

// MaxBatchItems bounds one request. A larger batch would hold the client's
// connection for several broker round trips and make its retry costlier.
const MaxBatchItems = 10_000

// wireReading is the reading as a client sends it. Value and Seq are
// pointers because 0 is a valid value of both: a missing field must be told
// apart from a zero. TS is a string so a bad time names its own field.
type wireReading struct {
	PatientID string   `json:"patient_id"`
	DeviceID  string   `json:"device_id"`
	Kind      Kind     `json:"kind"`
	Value     *float64 `json:"value"`
	Unit      string   `json:"unit"`
	TS        string   `json:"ts"`
	Seq       *uint64  `json:"seq"`
}

// DecodeBatch parses and validates a batch of readings: a JSON array, or
// NDJSON (one object a line) when ndjson is set. It returns every reading,
// or an error: ErrMalformed (wrapped) for an unreadable body, or a
// *BatchError naming each bad item by index and field. Either all readings
// are valid or none is returned, so a caller never produces part of a bad
// request.
func DecodeBatch(body []byte, ndjson bool, now time.Time) ([]Reading, error) {
	items, err := split(body, ndjson)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: the batch is empty", ErrMalformed)
	}
	if len(items) > MaxBatchItems {
		return nil, fmt.Errorf("%w: %d readings, at most %d per request", ErrMalformed, len(items), MaxBatchItems)
	}
	out := make([]Reading, len(items))
	var bad []FieldError
	for i, raw := range items {
		errs := decodeItem(raw, &out[i], now)
		for _, e := range errs {
			e.Index = i
			bad = append(bad, e)
		}
	}
	if bad != nil {
		return nil, &BatchError{Items: bad}
	}
	return out, nil
}

func split(body []byte, ndjson bool) ([]json.RawMessage, error) {
	if !ndjson {
		var items []json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, fmt.Errorf("%w: want a JSON array of readings: %v", ErrMalformed, err)
		}
		return items, nil
	}
	var items []json.RawMessage
	for line := range bytes.Lines(body) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		items = append(items, json.RawMessage(line))
	}
	return items, nil
}

func decodeItem(raw json.RawMessage, r *Reading, now time.Time) []FieldError {
	if decodeFast(raw, r) {
		if errs := r.Check(now); errs == nil {
			return nil
		}
	}
	return decodeSlow(raw, r, now)
}

// decodeSlow is encoding/json with every error named by field.
func decodeSlow(raw json.RawMessage, r *Reading, now time.Time) []FieldError {
	var w wireReading
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var errs []FieldError
	badField := ""
	if err := dec.Decode(&w); err != nil {
		// A wrong type in one field still decodes the others, so the
		// client hears of every problem at once; anything else
		// (syntax, unknown field) makes the item unreadable.
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) || te.Field == "" {
			return []FieldError{decodeError(err)}
		}
		errs = append(errs, decodeError(err))
		badField = te.Field
	}
	*r = Reading{PatientID: w.PatientID, DeviceID: w.DeviceID, Kind: w.Kind, Unit: w.Unit}
	if w.Value == nil {
		if badField != "value" {
			errs = append(errs, FieldError{Field: "value", Reason: "is required"})
		}
	} else {
		r.Value = *w.Value
	}
	if w.Seq == nil {
		if badField != "seq" {
			errs = append(errs, FieldError{Field: "seq", Reason: "is required (per-device sequence number)"})
		}
	} else {
		r.Seq = *w.Seq
	}
	tsOK := true
	if w.TS != "" {
		ts, err := time.Parse(time.RFC3339Nano, w.TS)
		if err != nil {
			errs = append(errs, FieldError{Field: "ts", Reason: "is not an RFC 3339 time: " + quote(w.TS)})
			tsOK = false
		}
		r.TS = ts.UTC()
	}
	for _, e := range r.Check(now) {
		if e.Field == "ts" && !tsOK || e.Field == badField {
			continue // already reported
		}
		errs = append(errs, e)
	}
	return errs
}

// decodeError turns encoding/json's error into a FieldError that names the
// field, so a client sees "value: must be a number" rather than Go types.
func decodeError(err error) FieldError {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return FieldError{Field: te.Field, Reason: "must be " + jsonType(te.Type.Kind().String()) + ", got " + te.Value}
	case errors.As(err, &se):
		return FieldError{Reason: "not valid JSON: " + se.Error()}
	case errors.As(err, &te):
		return FieldError{Reason: "must be a JSON object, got " + te.Value}
	}
	// DisallowUnknownFields reports `json: unknown field "x"`.
	if msg := err.Error(); len(msg) > 20 && msg[:20] == "json: unknown field " {
		return FieldError{Field: unquote(msg[20:]), Reason: "is not a field of vital-reading.v1"}
	}
	return FieldError{Reason: err.Error()}
}

func jsonType(goKind string) string {
	switch goKind {
	case "float64":
		return "a finite number"
	case "uint64":
		return "a non-negative integer"
	case "string":
		return "a string"
	}
	return goKind
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}
