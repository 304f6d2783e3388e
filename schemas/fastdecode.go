package schemas

import (
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
	end, ok := decodeObject(b, 0, r)
	return ok && skipWS(b, end) == len(b)
}

// decodeObject is decodeFast for the object at b[i:] (after whitespace):
// it returns the index after its closing brace.
func decodeObject(b []byte, i int, r *Reading) (int, bool) {
	i = skipWS(b, i)
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	i++
	var seen uint8
	for {
		i = skipWS(b, i)
		key, n, ok := plainString(b, i)
		if !ok {
			return 0, false
		}
		i = skipWS(b, n)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		i = skipWS(b, i+1)
		var bit uint8
		switch string(key) {
		case "patient_id", "device_id", "kind", "unit", "ts":
			s, n, ok := plainString(b, i)
			if !ok {
				return 0, false
			}
			i = n
			switch string(key) {
			case "patient_id":
				bit, r.PatientID = 1, string(s)
			case "device_id":
				bit, r.DeviceID = 2, string(s)
			case "kind":
				bit, r.Kind = 4, knownKind(s)
			case "unit":
				bit, r.Unit = 8, knownUnit(s)
			case "ts":
				t, ok := parseUTC(s)
				if !ok {
					t2, err := time.Parse(time.RFC3339Nano, string(s))
					if err != nil {
						return 0, false
					}
					t = t2.UTC()
				}
				bit, r.TS = 16, t
			}
		case "value":
			num, n, ok := jsonNumber(b, i)
			if !ok {
				return 0, false
			}
			v, err := strconv.ParseFloat(string(num), 64)
			if err != nil {
				return 0, false
			}
			bit, r.Value, i = 32, v, n
		case "seq":
			num, n, ok := jsonNumber(b, i)
			if !ok {
				return 0, false
			}
			v, err := strconv.ParseUint(string(num), 10, 64)
			if err != nil {
				return 0, false
			}
			bit, r.Seq, i = 64, v, n
		default:
			return 0, false
		}
		if seen&bit != 0 {
			return 0, false
		}
		seen |= bit
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, false
		}
		if b[i] == '}' {
			return i + 1, seen == 127
		}
		if b[i] != ',' {
			return 0, false
		}
		i++
	}
}

// decodeArrayFast decodes a JSON array of readings in one pass over the
// body: each object is parsed where the scan finds it, with no separate
// split. ok is false for anything it does not handle (an escape, an
// unusual number, a reading that fails Check, more than MaxBatchItems,
// an empty array); DecodeBatch then takes the general path, which accepts
// or names the same problems as before. FuzzArrayFastAgrees checks that
// both paths give the same readings whenever this one answers.
func decodeArrayFast(body []byte, now time.Time) ([]Reading, bool) {
	i := skipWS(body, 0)
	if i >= len(body) || body[i] != '[' {
		return nil, false
	}
	out := make([]Reading, 0, len(body)/128+1)
	for {
		if len(out) == MaxBatchItems {
			return nil, false
		}
		out = append(out, Reading{})
		end, ok := decodeObject(body, i+1, &out[len(out)-1])
		if !ok || out[len(out)-1].Check(now) != nil {
			return nil, false
		}
		i = skipWS(body, end)
		if i >= len(body) {
			return nil, false
		}
		switch body[i] {
		case ',':
			continue
		case ']':
			if skipWS(body, i+1) != len(body) {
				return nil, false
			}
			return out, true
		default:
			return nil, false
		}
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
	// One pass finding the quote and checking the bytes: readings' strings
	// are short, where bytes.IndexByte and a second loop cost more.
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c > 0x7e:
			return nil, 0, false
		}
	}
	return nil, 0, false
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

// knownKind returns the Kind constant spelled s, sparing an allocation
// per reading; any other spelling is copied as it is.
func knownKind(s []byte) Kind {
	for i := range Specs {
		if string(Specs[i].Kind) == string(s) {
			return Specs[i].Kind
		}
	}
	return Kind(s)
}

// knownUnit is knownKind for units.
func knownUnit(s []byte) string {
	for i := range Specs {
		if Specs[i].Unit == string(s) {
			return Specs[i].Unit
		}
	}
	return string(s)
}

// parseUTC reads the timestamp devices send, 2006-01-02T15:04:05Z with an
// optional fraction of one to nine digits, to the same time
// time.Parse(time.RFC3339Nano, s) gives; time.Parse's generality was a
// sixth of the decode. It reports false for any other shape, which the
// caller hands to time.Parse.
func parseUTC(s []byte) (time.Time, bool) {
	n := len(s)
	if n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[n-1] != 'Z' {
		return time.Time{}, false
	}
	num := func(b []byte) int {
		v := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(s[0:4]), num(s[5:7]), num(s[8:10])
	hour, minute, sec := num(s[11:13]), num(s[14:16]), num(s[17:19])
	if year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	if day > daysIn(time.Month(month), year) {
		return time.Time{}, false
	}
	nsec := 0
	if n > 20 {
		frac := s[20 : n-1]
		if s[19] != '.' || len(frac) < 1 || len(frac) > 9 {
			return time.Time{}, false
		}
		if nsec = num(frac); nsec < 0 {
			return time.Time{}, false
		}
		for range 9 - len(frac) {
			nsec *= 10
		}
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

func daysIn(m time.Month, year int) int {
	if m == time.February {
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	}
	return 31 - int((m-1)%7%2)
}
