package schemas

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// AppendReading appends r encoded as json.Marshal encodes it, byte for
// byte, without reflection: ingest encodes every reading it accepts, and
// encoding/json's reflection was as costly as parsing the batch. A reading
// with a string that JSON must escape, or a time json.Marshal refuses,
// takes json.Marshal itself (so the error, too, is the same).
// FuzzAppendReading compares the two.
func AppendReading(dst []byte, r *Reading) ([]byte, error) {
	if !plain(r.PatientID) || !plain(r.DeviceID) || !plain(string(r.Kind)) || !plain(r.Unit) || r.TS.Year() < 0 || r.TS.Year() > 9999 ||
		math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
		b, err := json.Marshal(r)
		return append(dst, b...), err
	}
	dst = append(dst, `{"patient_id":"`...)
	dst = append(dst, r.PatientID...)
	dst = append(dst, `","device_id":"`...)
	dst = append(dst, r.DeviceID...)
	dst = append(dst, `","kind":"`...)
	dst = append(dst, r.Kind...)
	dst = append(dst, `","value":`...)
	dst = appendFloat(dst, r.Value)
	dst = append(dst, `,"unit":"`...)
	dst = append(dst, r.Unit...)
	dst = append(dst, `","ts":"`...)
	dst = r.TS.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	return append(dst, '}'), nil
}

// plain says whether s is written as it is inside JSON quotes by
// encoding/json: printable ASCII other than the quote, the backslash and
// the HTML characters it escapes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// appendFloat is encoding/json's float64 encoding.
func appendFloat(b []byte, f float64) []byte {
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
