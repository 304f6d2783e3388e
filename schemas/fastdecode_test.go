package schemas

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Whatever the fast path decides alone (it read the item and the reading
// is valid), encoding/json decides the same: the fast path may only ever
// be a shortcut, never a second opinion. (An item it reads but that is
// invalid goes the slow way for its error messages anyway.)
func checkFastAgrees(t *testing.T, raw string) (fast bool) {
	var f, s Reading
	if !decodeFast([]byte(raw), &f) || f.Check(farFuture) != nil {
		return false
	}
	if errs := decodeSlow(json.RawMessage(raw), &s, farFuture); errs != nil {
		t.Fatalf("fast path accepted what encoding/json refuses: %s\n%v", raw, errs)
	}
	if f != s {
		t.Fatalf("%s\nfast %+v\nslow %+v", raw, f, s)
	}
	return true
}

func TestFastDecodeAgreesWithEncodingJSON(t *testing.T) {
	good := `{"patient_id":"P1","device_id":"D1","kind":"heart_rate","value":72.5,"unit":"/min","ts":"2026-11-22T09:00:00.123Z","seq":3}`
	if !checkFastAgrees(t, good) {
		t.Fatal("the common case takes the slow path")
	}
	for _, c := range []string{
		" {\n \"seq\": 0, \"ts\":\"2026-11-22T09:00:00+01:00\", \"unit\":\"%\", \"value\": 0.95e+2, \"kind\":\"spo2\", \"device_id\":\"d\", \"patient_id\":\"p\"} \n",
		strings.Replace(good, `72.5`, `1.2E2`, 1),
		strings.Replace(good, `72.5`, `0`, 1),
	} {
		if !checkFastAgrees(t, c) {
			t.Errorf("slow path for %s", c)
		}
	}
	// Each of these must fall back: the slow path decides (and names the
	// error, or accepts what only it can read).
	for _, c := range []string{
		strings.Replace(good, `"P1"`, `"P\u0031"`, 1),            // escape
		strings.Replace(good, `"patient_id"`, `"Patient_ID"`, 1), // encoding/json matches case-insensitively
		strings.Replace(good, `72.5`, `+72.5`, 1), strings.Replace(good, `72.5`, `.5`, 1), strings.Replace(good, `72.5`, `05`, 1),
		strings.Replace(good, `72.5`, `Inf`, 1), strings.Replace(good, `72.5`, `0x1p3`, 1), strings.Replace(good, `72.5`, `null`, 1),
		strings.Replace(good, `72.5`, `"72.5"`, 1), strings.Replace(good, `72.5`, `1e400`, 1),
		strings.Replace(good, `"seq":3`, `"seq":3.0`, 1), strings.Replace(good, `"seq":3`, `"seq":-3`, 1), strings.Replace(good, `"seq":3`, `"seq":1e2`, 1),
		strings.Replace(good, `,"seq":3`, ``, 1), strings.Replace(good, `"seq":3`, `"seq":3,"seq":4`, 1), strings.Replace(good, `"seq":3`, `"seq":3,"x":1`, 1),
		strings.Replace(good, `}`, `}x`, 1), strings.Replace(good, `}`, `,}`, 1), good[:len(good)-1], `[]`, ``,
		strings.Replace(good, `2026-11-22T09:00:00.123Z`, `yesterday`, 1), strings.Replace(good, `"D1"`, `"Dé"`, 1),
	} {
		if checkFastAgrees(t, c) {
			t.Errorf("fast path took %s", c)
		}
	}
}

// Random mutations of valid readings: the fast path never disagrees.
func TestFastDecodeRandomMutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := Reading{PatientID: "P-01", DeviceID: "mon.1", Kind: SpO2, Value: 97, Unit: "%", TS: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC), Seq: 42}
	base, _ := json.Marshal(r)
	alphabet := []byte(`{}[]",:.-+eE0123456789 \nabcnulltrue`)
	fast := 0
	for range 20000 {
		b := []byte(string(base))
		for range 1 + rng.IntN(3) {
			i := rng.IntN(len(b))
			switch rng.IntN(3) {
			case 0:
				b[i] = alphabet[rng.IntN(len(alphabet))]
			case 1:
				b = append(b[:i], b[i+1:]...)
			default:
				b = append(b[:i], append([]byte{alphabet[rng.IntN(len(alphabet))]}, b[i:]...)...)
			}
		}
		if checkFastAgrees(t, string(b)) {
			fast++
		}
	}
	if fast == 0 {
		t.Fatal("no mutation took the fast path; the test compared nothing")
	}
}

func FuzzFastDecode(f *testing.F) {
	f.Add(`{"patient_id":"P1","device_id":"D1","kind":"heart_rate","value":72.5,"unit":"/min","ts":"2026-11-22T09:00:00.123Z","seq":3}`)
	f.Fuzz(func(t *testing.T, s string) { checkFastAgrees(t, s) })
}

func BenchmarkDecodeReading(b *testing.B) {
	raw := []byte(`{"patient_id":"P001","device_id":"P001-monitor","kind":"heart_rate","value":72,"unit":"/min","ts":"2026-11-22T09:00:00.123Z","seq":12345}`)
	for _, path := range []struct {
		name string
		fn   func(json.RawMessage, *Reading, time.Time) []FieldError
	}{{"fast", decodeItem}, {"encoding_json", decodeSlow}} {
		b.Run(path.name, func(b *testing.B) {
			b.ReportAllocs()
			var r Reading
			for b.Loop() {
				if errs := path.fn(raw, &r, farFuture); errs != nil {
					b.Fatal(errs)
				}
			}
		})
	}
}

// parseUTC accepts only what time.Parse accepts, and reads it the same.
func checkParseUTC(t *testing.T, s string) (fast bool) {
	got, ok := parseUTC([]byte(s))
	if !ok {
		return false
	}
	want, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("parseUTC took %q, time.Parse refuses it: %v", s, err)
	}
	if got != want.UTC() {
		t.Fatalf("%q: parseUTC %v, time.Parse %v", s, got, want.UTC())
	}
	return true
}

func TestParseUTCAgreesWithTimeParse(t *testing.T) {
	for _, s := range []string{"2026-11-22T09:00:00Z", "2026-11-22T09:00:00.1Z", "2026-11-22T09:00:00.123456789Z",
		"2024-02-29T23:59:59.5Z", "2000-02-29T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z"} {
		if !checkParseUTC(t, s) {
			t.Errorf("%q took the slow path", s)
		}
	}
	for _, s := range []string{"1900-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z",
		"2026-11-22T24:00:00Z", "2026-11-22T09:60:00Z", "2026-11-22T09:00:60Z", "2026-11-22T09:00:00.Z",
		"2026-11-22T09:00:00.1234567890Z", "2026-11-22T09:00:00+00:00", "2026-11-22t09:00:00Z", "2026-11-22T09:00:00z",
		"2026-11-22T09:00:00,5Z", "2026-1x-22T09:00:00Z", "+026-11-22T09:00:00Z", "2026-11-22T09:00:0Z"} {
		if checkParseUTC(t, s) {
			t.Errorf("%q took the fast path", s)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		tm := time.Unix(rng.Int64N(400*365*86400)-100*365*86400, rng.Int64N(1e9)).UTC()
		for _, layout := range []string{time.RFC3339, time.RFC3339Nano, "2006-01-02T15:04:05.000Z07:00"} {
			if s := tm.Format(layout); !checkParseUTC(t, s) {
				t.Fatalf("%q took the slow path", s)
			}
		}
		b := []byte(tm.Format(time.RFC3339Nano))
		b[rng.IntN(len(b))] = "0123456789:-.TZ"[rng.IntN(15)]
		checkParseUTC(t, string(b))
	}
}

func FuzzParseUTC(f *testing.F) {
	f.Add("2026-11-22T09:00:00.123Z")
	f.Fuzz(func(t *testing.T, s string) { checkParseUTC(t, s) })
}

// The one-pass array path and the general path (split, then decode each
// item) give the same readings whenever the one-pass path answers, and
// DecodeBatch gives what the general path gives, readings or problems.
func FuzzArrayFastAgrees(f *testing.F) {
	f.Add(`[` + okItem + `,` + okItem + `]`)
	f.Add(` [ ` + okItem + " ,\n" + item(`"seq":1`, `"seq":2`) + ` ] `)
	f.Add(`[` + okItem + `,]`)
	f.Add(`[]`)
	f.Add(`[` + okItem + `]]`)
	f.Add(`[` + item(`"value":72`, `"value":072`) + `]`)
	f.Add(`[` + item(`"P1"`, `"P\u0031"`) + `]`)
	f.Fuzz(func(t *testing.T, body string) {
		fast, ok := decodeArrayFast([]byte(body), now)
		general, gerr := decodeBatchGeneral([]byte(body), false, now)
		if ok {
			if gerr != nil {
				t.Fatalf("one pass accepted %q; the general path: %v", body, gerr)
			}
			if !reflect.DeepEqual(fast, general) {
				t.Fatalf("%q: one pass %+v, general %+v", body, fast, general)
			}
		}
		got, err := DecodeBatch([]byte(body), false, now)
		if (err == nil) != (gerr == nil) || err != nil && err.Error() != gerr.Error() || !reflect.DeepEqual(got, general) {
			t.Fatalf("%q: DecodeBatch %v %v, general %v %v", body, got, err, general, gerr)
		}
	})
}

// AppendReading writes what json.Marshal writes, for any reading.
func FuzzAppendReading(f *testing.F) {
	f.Add("P1", "D1", "heart_rate", 72.5, "/min", int64(1763802000123456789), uint64(3))
	f.Add("P<1>", "D\u00e91", "spo2", 1e-7, "%", int64(-6213559680000000), uint64(0))
	f.Add("P1", "D1", "spo2", 1e21, "mm[Hg]", int64(0), uint64(1<<63))
	f.Fuzz(func(t *testing.T, p, d, k string, v float64, u string, ns int64, seq uint64) {
		r := Reading{PatientID: p, DeviceID: d, Kind: Kind(k), Value: v, Unit: u, TS: time.Unix(0, ns).UTC(), Seq: seq}
		want, werr := json.Marshal(&r)
		got, err := AppendReading(nil, &r)
		if (err == nil) != (werr == nil) || err == nil && string(got) != string(want) {
			t.Fatalf("AppendReading %s %v, json.Marshal %s %v", got, err, want, werr)
		}
	})
}

// BenchmarkIngestBatch is ingest's JSON work on a gateway's batch of 50
// readings: decode and validate it, then encode each reading's record
// value, the one-pass way and the general way (encoding/json split,
// decode, json.Marshal).
func BenchmarkIngestBatch(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("[")
	for i := range 50 {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"patient_id":"P%04d","device_id":"P%04d-monitor","kind":"heart_rate","value":%d,"unit":"/min","ts":"2026-11-22T09:59:00.123Z","seq":%d}`, i, i, 60+i, 1000+i)
	}
	sb.WriteString("]")
	body := []byte(sb.String())
	b.Run("one_pass", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			rs, err := DecodeBatch(body, false, now)
			if err != nil {
				b.Fatal(err)
			}
			for i := range rs {
				if _, err := ReadingRecord("vitals.v1", &rs[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			rs, err := decodeBatchGeneral(body, false, now)
			if err != nil {
				b.Fatal(err)
			}
			for i := range rs {
				if _, err := json.Marshal(&rs[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
