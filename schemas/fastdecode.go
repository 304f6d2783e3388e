package schemas

import (
	"bytes"
	"strconv"
	"time"
)

// decodeFast reads the common case of a reading, a flat JSON object of the
// seven fields with plain strings and numbers, without reflection: the
// JSON decode was a quarter of the alert processor's CPU. It reports false
// for anything else (escapes, null, an unknown or repeated key, a number
// JSON or the Go types would refuse), and the caller then runs the full
// decoder, which gives the same result or the precise error. It does no
// validation beyond syntax.
func decodeFast(b []byte, r *Reading) bool {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i++
	var seen uint8
	for {
		i = skipWS(b, i)
		key, n, ok := plainString(b, i)
		if !ok {
			return false
		}
		i = skipWS(b, n)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipWS(b, i+1)
		var bit uint8
		switch string(key) {
		case "patient_id", "device_id", "kind", "unit", "ts":
			s, n, ok := plainString(b, i)
			if !ok {
				return false
			}
			i = n
			switch string(key) {
			case "patient_id":
				bit, r.PatientID = 1, string(s)
			case "device_id":
				bit, r.DeviceID = 2, string(s)
			case "kind":
				bit, r.Kind = 4, Kind(s)
			case "unit":
				bit, r.Unit = 8, string(s)
			case "ts":
				t, err := time.Parse(time.RFC3339Nano, string(s))
				if err != nil {
					return false
				}
				bit, r.TS = 16, t.UTC()
			}
		case "value":
			num, n, ok := jsonNumber(b, i)
			if !ok {
				return false
			}
			v, err := strconv.ParseFloat(string(num), 64)
			if err != nil {
				return false
			}
			bit, r.Value, i = 32, v, n
		case "seq":
			num, n, ok := jsonNumber(b, i)
			if !ok {
				return false
			}
			v, err := strconv.ParseUint(string(num), 10, 64)
			if err != nil {
				return false
			}
			bit, r.Seq, i = 64, v, n
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		i = skipWS(b, i)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			return seen == 127 && skipWS(b, i+1) == len(b)
		}
		if b[i] != ',' {
			return false
		}
		i++
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string at b[i] that has no escape and no byte
// below 0x20 or above 0x7e (anything else goes the slow way, which
// validates UTF-8), returning its contents and the index after it.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	n := bytes.IndexByte(b[i+1:], '"')
	if n < 0 {
		return nil, 0, false
	}
	s := b[i+1 : i+1+n]
	for _, c := range s {
		if c == '\\' || c < 0x20 || c > 0x7e {
			return nil, 0, false
		}
	}
	return s, i + 2 + n, true
}

// jsonNumber reads a number at b[i] that follows JSON's grammar exactly
// (strconv accepts more: "+1", ".5", "0x1p3", "Inf").
func jsonNumber(b []byte, i int) ([]byte, int, bool) {
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return nil, 0, false
	}
	digits := func() bool {
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > d
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return nil, 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return nil, 0, false
		}
	}
	return b[start:i], i, true
}
