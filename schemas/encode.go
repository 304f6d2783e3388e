package schemas

import (
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendReading appends r encoded as json.Marshal encodes it, byte for
// byte, without reflection: ingest encodes every reading it accepts, and
// encoding/json's reflection was as costly as parsing the batch. A reading
// with a time or number json.Marshal refuses takes json.Marshal itself (so
// the error, too, is the same). FuzzAppendReading compares the two.
func AppendReading(dst []byte, r *Reading) ([]byte, error) {
	if b, ok := appendReadingFast(dst, r); ok {
		return b, nil
	}
	b, err := json.Marshal(r)
	return append(dst, b...), err
}

func appendReadingFast(b []byte, r *Reading) (_ []byte, ok bool) {
	if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
		return b, false
	}
	b = append(b, `{"patient_id":`...)
	b = AppendString(b, r.PatientID)
	b = append(b, `,"device_id":`...)
	b = AppendString(b, r.DeviceID)
	b = append(b, `,"kind":`...)
	b = AppendString(b, string(r.Kind))
	b = append(b, `,"value":`...)
	b = AppendFloat(b, r.Value)
	b = append(b, `,"unit":`...)
	b = AppendString(b, r.Unit)
	b = append(b, `,"ts":`...)
	if b, ok = AppendTime(b, r.TS); !ok {
		return b, false
	}
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	return append(b, '}'), true
}

// AppendFloat is encoding/json's float64 encoding (f finite).
func AppendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// AppendString appends s quoted as encoding/json writes a string, byte for
// byte: with <, > and & escaped for HTML, invalid UTF-8 replaced by
// U+FFFD, and U+2028 and U+2029 escaped.
func AppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendTime appends t as time.Time's MarshalJSON does; ok is false
// where that fails (a year outside 0-9999, a zone offset of a day or
// more), and the caller takes encoding/json for its error.
func AppendTime(dst []byte, t time.Time) (_ []byte, ok bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return dst, false
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		return dst, false
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), true
}

// AppendAlert appends a as json.Marshal encodes it, byte for byte, without
// reflection: every open alarm is in its patient's snapshot, written in
// every transaction that changes the patient. What it does not handle
// (a time or number json.Marshal refuses) takes json.Marshal, errors
// included. FuzzAppendAlert compares the two.
func AppendAlert(dst []byte, a *Alert) ([]byte, error) {
	if b, ok := appendAlertFast(dst, a); ok {
		return b, nil
	}
	b, err := json.Marshal(a)
	return append(dst, b...), err
}

func appendAlertFast(b []byte, a *Alert) (_ []byte, ok bool) {
	if math.IsNaN(a.Limit) || math.IsInf(a.Limit, 0) {
		return b, false
	}
	b = append(b, `{"alert_id":`...)
	b = AppendString(b, a.AlertID)
	b = append(b, `,"patient_id":`...)
	b = AppendString(b, a.PatientID)
	b = append(b, `,"condition":`...)
	b = AppendString(b, a.Condition)
	b = append(b, `,"priority":`...)
	b = AppendString(b, string(a.Priority))
	b = append(b, `,"state":`...)
	b = AppendString(b, string(a.State))
	b = append(b, `,"ts":`...)
	if b, ok = AppendTime(b, a.TS); !ok {
		return b, false
	}
	b = append(b, `,"limit":`...)
	b = AppendFloat(b, a.Limit)
	b = append(b, `,"message":`...)
	b = AppendString(b, a.Message)
	b = append(b, `,"reading":`...)
	var err error
	if b, err = AppendReading(b, &a.Reading); err != nil {
		return b, false
	}
	if a.Score != nil {
		b = append(b, `,"score":`...)
		b = strconv.AppendInt(b, int64(*a.Score), 10)
	}
	if len(a.Components) > 0 {
		b = append(b, `,"components":{`...)
		for i, k := range slices.Sorted(maps.Keys(a.Components)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendString(b, k)
			b = append(b, ':')
			b = strconv.AppendInt(b, int64(a.Components[k]), 10)
		}
		b = append(b, '}')
	}
	if a.AckedBy != "" {
		b = append(b, `,"acked_by":`...)
		b = AppendString(b, a.AckedBy)
	}
	if a.Ward != "" {
		b = append(b, `,"ward":`...)
		b = AppendString(b, a.Ward)
	}
	if a.Bed != "" {
		b = append(b, `,"bed":`...)
		b = AppendString(b, a.Bed)
	}
	if a.Updated {
		b = append(b, `,"updated":true`...)
	}
	if a.EscalationLevel != 0 {
		b = append(b, `,"escalation_level":`...)
		b = strconv.AppendInt(b, int64(a.EscalationLevel), 10)
	}
	if a.Notify != "" {
		b = append(b, `,"notify":`...)
		b = AppendString(b, a.Notify)
	}
	if a.Silenced {
		b = append(b, `,"silenced":true`...)
	}
	return append(b, '}'), true
}
