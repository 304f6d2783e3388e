package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
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
	Seq       *wireSeq `json:"seq"`
}

// wireSeq is a sequence number as JSON Schema reads "integer": any JSON
// number with no fraction, so 1983261.0 and 1e3 are integers. As a
// *uint64, encoding/json refused them: a reading its own schema allowed
// (found by schemathesis; the alarm silence's seconds had the same
// cause). A string is still refused: it is not a number. A bad value is
// kept, not returned as an error: encoding/json stops at an Unmarshaler's
// error, and the fields after it would be called missing.
type wireSeq struct {
	n uint64
	// bad is the JSON value when it is not such an integer.
	bad string
}

func (s *wireSeq) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] == '"' || b[0] == 'n' || b[0] == 't' || b[0] == 'f' || b[0] == '[' || b[0] == '{' {
		s.bad = jsonValueKind(b)
		return nil
	}
	if n, err := strconv.ParseUint(string(b), 10, 64); err == nil {
		s.n = n
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f != math.Trunc(f) || f < 0 || f >= 1<<64 {
		s.bad = "number " + string(b)
		return nil
	}
	s.n = uint64(f)
	return nil
}

// jsonValueKind names the kind of a JSON value as encoding/json does in
// its type errors.
func jsonValueKind(b []byte) string {
	switch {
	case len(b) == 0:
		return "nothing"
	case b[0] == '"':
		return "string"
	case b[0] == 't' || b[0] == 'f':
		return "bool"
	case b[0] == 'n':
		return "null"
	case b[0] == '[':
		return "array"
	case b[0] == '{':
		return "object"
	}
	return "number"
}

// DecodeBatch parses and validates a batch of readings: a JSON array, or
// NDJSON (one object a line) when ndjson is set. It returns every reading,
// or an error: ErrMalformed (wrapped) for an unreadable body, or a
// *BatchError naming each bad item by index and field. Either all readings
// are valid or none is returned, so a caller never produces part of a bad
// request.
//
// Every byte of the body must belong to a reading it returns: trailing data
// after an NDJSON line's object (or two objects on one line) is a problem
// of that line, never silently dropped.
func DecodeBatch(body []byte, ndjson bool, now time.Time) ([]Reading, error) {
	if !ndjson {
		if rs, ok := decodeArrayFast(body, now); ok {
			return rs, nil
		}
	}
	return decodeBatchGeneral(body, ndjson, now)
}

// decodeBatchGeneral is DecodeBatch without the one-pass array path: it
// splits the body, then decodes each item, and names every problem.
func decodeBatchGeneral(body []byte, ndjson bool, now time.Time) ([]Reading, error) {
	var (
		items []rawItem
		err   error
	)
	if ndjson {
		items, err = splitLines(body)
	} else {
		items, err = splitArray(body)
	}
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: the batch is empty", ErrMalformed)
	}
	out := make([]Reading, len(items))
	var bad BatchError
	for i, it := range items {
		for _, e := range decodeItem(it.raw, &out[i], now) {
			e.Index, e.Line = i, it.line
			bad.add(e)
		}
	}
	if bad.Items != nil {
		return nil, &bad
	}
	return out, nil
}

// rawItem is one reading's bytes and, in NDJSON, its line (1-based).
type rawItem struct {
	raw  []byte
	line int
}

func tooMany() error {
	return fmt.Errorf("%w: more than %d readings; send at most %d per request", ErrMalformed, MaxBatchItems, MaxBatchItems)
}

// splitArray splits a JSON array into its items, counting them as it
// goes: a body of a million small values is refused at the first item
// past the limit instead of after all of them are parsed.
func splitArray(body []byte) ([]rawItem, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	malformed := func(err error) error {
		return fmt.Errorf("%w: want a JSON array of readings: %v", ErrMalformed, err)
	}
	if tok, err := dec.Token(); err != nil {
		return nil, malformed(err)
	} else if tok != json.Delim('[') {
		return nil, malformed(fmt.Errorf("the body starts with %v, not [", tok))
	}
	var items []rawItem
	for dec.More() {
		if len(items) == MaxBatchItems {
			return nil, tooMany()
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, malformed(err)
		}
		items = append(items, rawItem{raw: raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, malformed(err)
	}
	if off := dec.InputOffset(); len(bytes.TrimSpace(body[off:])) > 0 {
		return nil, malformed(errors.New("data after the closing ]"))
	}
	return items, nil
}

// splitLines splits NDJSON into its non-blank lines, numbered from 1.
func splitLines(body []byte) ([]rawItem, error) {
	var items []rawItem
	n := 0
	for line := range bytes.Lines(body) {
		n++
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if len(items) == MaxBatchItems {
			return nil, tooMany()
		}
		items = append(items, rawItem{raw: line, line: n})
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
		// (syntax, unknown field) makes the rawItem unreadable.
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) || te.Field == "" {
			return []FieldError{decodeError(err)}
		}
		errs = append(errs, decodeError(err))
		badField = te.Field
	}
	// encoding/json stops after the first value: what follows it would
	// otherwise be dropped without a word.
	if rest := bytes.TrimSpace(raw[dec.InputOffset():]); len(rest) > 0 {
		return []FieldError{{Reason: "data after the reading's object: " + Quote(string(rest)) + " (one reading per line, one object per reading)"}}
	}
	// encoding/json keeps the last of repeated keys; a reading that says
	// two things of one field is refused instead.
	if key := repeatedKey(raw); key != "" {
		return []FieldError{{Field: key, Reason: "is given more than once"}}
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
		r.Seq = w.Seq.n
		if w.Seq.bad != "" {
			errs = append(errs, FieldError{Field: "seq", Reason: "must be " + jsonType("uint64") + ", got " + truncate(w.Seq.bad)})
		}
	}
	tsOK := true
	if w.TS != "" {
		ts, err := time.Parse(time.RFC3339Nano, w.TS)
		switch {
		case err != nil:
			errs = append(errs, FieldError{Field: "ts", Reason: "is not an RFC 3339 time: " + Quote(w.TS)})
			tsOK = false
		case ts.Before(MinEventTime):
			// Year 1 is Go's zero time, which Check would call missing.
			errs = append(errs, FieldError{Field: "ts", Reason: reasonUnset + ": " + Quote(w.TS)})
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

// repeatedKey returns the first key the JSON object raw repeats, or "".
func repeatedKey(raw []byte) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		key, _ := tok.(string)
		if seen[key] {
			return truncate(key)
		}
		seen[key] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return ""
		}
	}
	return ""
}

// decodeError turns encoding/json's error into a FieldError that names the
// field, so a client sees "value: must be a number" rather than Go types.
func decodeError(err error) FieldError {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return FieldError{Field: te.Field, Reason: "must be " + jsonType(te.Type.Kind().String()) + ", got " + truncate(te.Value)}
	case errors.As(err, &se):
		return FieldError{Reason: "not valid JSON: " + se.Error()}
	case errors.As(err, &te):
		return FieldError{Reason: "must be a JSON object, got " + truncate(te.Value)}
	}
	// DisallowUnknownFields reports `json: unknown field "x"`.
	if msg := err.Error(); len(msg) > 20 && msg[:20] == "json: unknown field " {
		return FieldError{Field: truncate(unquote(msg[20:])), Reason: "is not a field of vital-reading.v1"}
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
