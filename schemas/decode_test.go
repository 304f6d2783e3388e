package schemas

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

const okItem = `{"patient_id":"P1","device_id":"D1","kind":"heart_rate","value":72,"unit":"/min","ts":"2026-11-22T09:59:59Z","seq":1}`

func item(replace ...string) string {
	return strings.NewReplacer(replace...).Replace(okItem)
}

func TestDecodeBatch(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		ndjson bool
		want   int          // readings returned when valid
		bad    []FieldError // expected problems (index, field); reason checked by substring
	}{
		{name: "valid", body: "[" + okItem + "," + item(`"seq":1`, `"seq":2`) + "]", want: 2},
		{name: "ndjson", body: okItem + "\n\n" + item(`"seq":1`, `"seq":2`) + "\n", ndjson: true, want: 2},
		{name: "heart rate zero is asystole, not invalid", body: "[" + item(`"value":72`, `"value":0`) + "]", want: 1},
		{name: "sleep asleep", body: "[" + item(`"heart_rate"`, `"sleep"`, `"value":72`, `"value":1`, `"/min"`, `"1"`) + "]", want: 1},
		{name: "unknown kind", body: "[" + item(`"heart_rate"`, `"pulse"`) + "]", bad: []FieldError{{0, 0, "kind", "unknown kind"}}},
		{name: "wrong unit", body: "[" + item(`"/min"`, `"bpm"`) + "]", bad: []FieldError{{0, 0, "unit", `measured in "/min"`}}},
		{name: "impossible value", body: "[" + item(`"value":72`, `"value":900`) + "]", bad: []FieldError{{0, 0, "value", "possible range"}}},
		{name: "non-finite value", body: "[" + item(`"value":72`, `"value":1e999`) + "]", bad: []FieldError{{0, 0, "value", "finite number"}}},
		{name: "string value", body: "[" + item(`"value":72`, `"value":"72"`) + "]", bad: []FieldError{{0, 0, "value", "finite number"}}},
		{name: "sleep must be 0 or 1", body: "[" + item(`"heart_rate"`, `"sleep"`, `"value":72`, `"value":0.5`, `"/min"`, `"1"`) + "]", bad: []FieldError{{0, 0, "value", "0 or 1"}}},
		{name: "missing patient", body: "[" + item(`"patient_id":"P1",`, ``) + "]", bad: []FieldError{{0, 0, "patient_id", "required"}}},
		{name: "missing device", body: "[" + item(`"device_id":"D1",`, ``) + "]", bad: []FieldError{{0, 0, "device_id", "required"}}},
		{name: "bad id characters", body: "[" + item(`"P1"`, `"P 1"`) + "]", bad: []FieldError{{0, 0, "patient_id", "letters"}}},
		{name: "missing value", body: "[" + item(`"value":72,`, ``) + "]", bad: []FieldError{{0, 0, "value", "required"}}},
		{name: "missing seq", body: "[" + item(`,"seq":1`, ``) + "]", bad: []FieldError{{0, 0, "seq", "required"}}},
		{name: "negative seq", body: "[" + item(`"seq":1`, `"seq":-1`) + "]", bad: []FieldError{{0, 0, "seq", "non-negative integer"}}},
		{name: "future ts", body: "[" + item(`09:59:59Z`, `10:05:01Z`) + "]", bad: []FieldError{{0, 0, "ts", "future"}}},
		{name: "ts within skew", body: "[" + item(`09:59:59Z`, `10:04:59Z`) + "]", want: 1},
		{name: "unparseable ts", body: "[" + item(`2026-11-22T09:59:59Z`, `yesterday`) + "]", bad: []FieldError{{0, 0, "ts", "RFC 3339"}}},
		{name: "year 1 is no missing ts", body: "[" + item(`2026-11-22T09:59:59Z`, `0001-01-01T00:00:00Z`) + "]", bad: []FieldError{{0, 0, "ts", "before 2000"}}},
		{name: "an unset clock", body: "[" + item(`2026-11-22T09:59:59Z`, `1970-01-01T00:00:12Z`) + "]", bad: []FieldError{{0, 0, "ts", "before 2000"}}},
		{name: "missing ts", body: "[" + item(`,"ts":"2026-11-22T09:59:59Z"`, ``) + "]", bad: []FieldError{{0, 0, "ts", "required"}}},
		{name: "unknown field", body: "[" + item(`"seq":1`, `"seq":1,"bed":"4"`) + "]", bad: []FieldError{{0, 0, "bed", "not a field"}}},
		{name: "item not an object", body: `[` + okItem + `, 7]`, bad: []FieldError{{1, 0, "", "JSON object"}}},
		{name: "every bad item is listed", body: "[" + okItem + "," + item(`"/min"`, `"x"`) + "," + okItem + "," + item(`"P1"`, `""`, `"value":72`, `"value":-3`) + "]",
			bad: []FieldError{{1, 0, "unit", "measured in"}, {3, 0, "patient_id", "required"}, {3, 0, "value", "possible range"}}},
		{name: "ndjson: two readings on one line", body: okItem + item(`"seq":1`, `"seq":2`) + "\n", ndjson: true, bad: []FieldError{{Index: 0, Line: 1, Reason: "data after the reading"}}},
		{name: "ndjson: trailing data after a reading", body: okItem + "\n" + okItem + ` x` + "\n", ndjson: true, bad: []FieldError{{Index: 1, Line: 2, Reason: "data after the reading"}}},
		{name: "ndjson: trailing data after a bad one", body: "\n\n" + item(`"value":72`, `"value":"x"`) + `]`, ndjson: true, bad: []FieldError{{Index: 0, Line: 3, Reason: "data after the reading"}}},
		{name: "ndjson: lines are counted with blank ones", body: okItem + "\n\n" + item(`"/min"`, `"x"`), ndjson: true, bad: []FieldError{{Index: 1, Line: 3, Field: "unit", Reason: "measured in"}}},
		{name: "repeated key", body: "[" + item(`"value":72`, `"value":72,"value":300`) + "]", bad: []FieldError{{0, 0, "value", "more than once"}}},
		{name: "repeated key, same value", body: "[" + item(`"seq":1`, `"seq":1,"seq":1`) + "]", bad: []FieldError{{0, 0, "seq", "more than once"}}},
		{name: "several problems in one item", body: "[" + item(`"heart_rate"`, `"pulse"`, `"D1"`, `""`) + "]", bad: []FieldError{{0, 0, "device_id", "required"}, {0, 0, "kind", "unknown"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeBatch([]byte(tt.body), tt.ndjson, now)
			if tt.bad == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if len(got) != tt.want {
					t.Fatalf("got %d readings, want %d", len(got), tt.want)
				}
				return
			}
			var be *BatchError
			if !errors.As(err, &be) {
				t.Fatalf("want *BatchError, got %v (readings %v)", err, got)
			}
			if got != nil {
				t.Fatalf("a rejected batch returned readings: %v", got)
			}
			if len(be.Items) != len(tt.bad) {
				t.Fatalf("got problems %+v, want %+v", be.Items, tt.bad)
			}
			for i, w := range tt.bad {
				g := be.Items[i]
				if g.Index != w.Index || g.Line != w.Line || g.Field != w.Field || !strings.Contains(g.Reason, w.Reason) {
					t.Errorf("problem %d: got %+v, want index %d line %d field %q reason containing %q", i, g, w.Index, w.Line, w.Field, w.Reason)
				}
			}
		})
	}
}

func TestDecodeBatchMalformed(t *testing.T) {
	for name, body := range map[string]string{
		"object not array": okItem,
		"truncated":        "[" + okItem,
		"empty array":      "[]",
		"empty ndjson":     "\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeBatch([]byte(body), name == "empty ndjson", now)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("want ErrMalformed, got %v", err)
			}
		})
	}
	big := "[" + strings.Repeat(okItem+",", MaxBatchItems) + okItem + "]"
	if _, err := DecodeBatch([]byte(big), false, now); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("oversized batch: got %v", err)
	}
}

func TestAlertIDIsAFunctionOfTheReading(t *testing.T) {
	r := Reading{PatientID: "P1", DeviceID: "D1", Kind: HeartRate, Value: 130, Unit: "/min", TS: now, Seq: 7}
	a, b := AlertID("heart_rate_high", &r), AlertID("heart_rate_high", &r)
	if a != b || len(a) != 32 {
		t.Fatalf("ids %q %q", a, b)
	}
	r2 := r
	r2.Seq = 8
	if AlertID("heart_rate_high", &r2) == a || AlertID("heart_rate_low", &r) == a {
		t.Fatal("different readings or conditions share an id")
	}
}

func TestDecodeBatchReportsEveryFieldOfAnItemWithAWrongType(t *testing.T) {
	_, err := DecodeBatch([]byte(`[{"patient_id":"P1","kind":"pulse","value":1e999}]`), false, now)
	var be *BatchError
	if !errors.As(err, &be) {
		t.Fatalf("got %v", err)
	}
	fields := map[string]bool{}
	for _, e := range be.Items {
		if fields[e.Field] {
			t.Errorf("field %s reported twice: %+v", e.Field, be.Items)
		}
		fields[e.Field] = true
	}
	for _, f := range []string{"value", "device_id", "kind", "seq", "ts"} {
		if !fields[f] {
			t.Errorf("field %s not reported: %+v", f, be.Items)
		}
	}
}

func BenchmarkDecodeBatch1000(b *testing.B) {
	body := []byte("[" + strings.Repeat(okItem+",", 999) + okItem + "]")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBatch(body, false, now); err != nil {
			b.Fatal(err)
		}
	}
}

// A small body of many bad items buys a bounded answer: the first
// MaxListedProblems problems and a count of the rest.
func TestBatchErrorIsBounded(t *testing.T) {
	body := "[" + strings.Repeat("{},", MaxBatchItems-1) + "{}]"
	_, err := DecodeBatch([]byte(body), false, now)
	var be *BatchError
	if !errors.As(err, &be) {
		t.Fatalf("got %v", err)
	}
	if len(be.Items) != MaxListedProblems || be.Total() <= MaxListedProblems || be.More != be.Total()-MaxListedProblems {
		t.Fatalf("listed %d, more %d, total %d", len(be.Items), be.More, be.Total())
	}
}

// A client's value is echoed back truncated, not whole.
func TestProblemsTruncateWhatTheyEcho(t *testing.T) {
	long := strings.Repeat("y", 100_000)
	for name, body := range map[string]string{
		"ts":            "[" + item(`"2026-11-22T09:59:59Z"`, `"`+long+`"`) + "]",
		"unknown field": "[" + item(`"seq":1`, `"seq":1,"`+long+`":1`) + "]",
		"trailing":      item("", "") + long,
	} {
		_, err := DecodeBatch([]byte(body), name == "trailing", now)
		var be *BatchError
		if !errors.As(err, &be) {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range be.Items {
			if len(p.Reason)+len(p.Field) > 300 || !strings.Contains(p.Reason+p.Field, "bytes)") {
				t.Errorf("%s: problem of %d bytes: %.200s", name, len(p.Reason)+len(p.Field), p.Reason+p.Field)
			}
		}
	}
}

// The item limit is checked while scanning: one item past it is refused
// as malformed whatever follows.
func TestTooManyItemsRefusedWhileScanning(t *testing.T) {
	for _, ndjson := range []bool{false, true} {
		var b strings.Builder
		sep := ","
		if ndjson {
			sep = "\n"
		} else {
			b.WriteString("[")
		}
		for i := range MaxBatchItems + 1 {
			if i > 0 {
				b.WriteString(sep)
			}
			b.WriteString(okItem)
		}
		if !ndjson {
			b.WriteString(",not even JSON")
		}
		if _, err := DecodeBatch([]byte(b.String()), ndjson, now); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "more than") {
			t.Fatalf("ndjson %v: %v", ndjson, err)
		}
	}
}

// The same two items sent as a JSON array and as NDJSON lines decode the
// same, every accepted reading is one of the body's items (nothing is
// dropped or added), and it encodes back to itself.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(okItem, item(`"seq":1`, `"seq":2`))
	f.Add(okItem, okItem+" x")
	f.Add(okItem+okItem, okItem)
	f.Add(item(`"value":72`, `"value":72,"value":1`), okItem)
	f.Add(`{"patient_id":"P\u0031","device_id":"D1","kind":"spo2","value":97.5,"unit":"%","ts":"2026-11-22T09:59:59.5+01:00","seq":0}`, okItem)
	f.Fuzz(func(t *testing.T, a, b string) {
		if strings.ContainsAny(a+b, "\r\n") || strings.TrimSpace(a) == "" || strings.TrimSpace(b) == "" {
			return // NDJSON would split them otherwise
		}
		items, err := splitArray([]byte("[" + a + "," + b + "]"))
		if err != nil || len(items) != 2 {
			return // not two array items: the shapes say different things
		}
		arr, aerr := DecodeBatch([]byte("["+a+","+b+"]"), false, farFuture)
		nd, nerr := DecodeBatch([]byte(a+"\n"+b+"\n"), true, farFuture)
		if (aerr == nil) != (nerr == nil) {
			t.Fatalf("array: %v\nndjson: %v", aerr, nerr)
		}
		if aerr != nil {
			return
		}
		if len(arr) != 2 || len(nd) != 2 || arr[0] != nd[0] || arr[1] != nd[1] {
			t.Fatalf("array %+v\nndjson %+v", arr, nd)
		}
		for _, raw := range []string{a, b} {
			checkFastAgrees(t, raw)
		}
		back, err := json.Marshal(arr)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeBatch(back, false, farFuture)
		if err != nil || again[0] != arr[0] || again[1] != arr[1] {
			t.Fatalf("round trip of %s: %+v %v", back, again, err)
		}
	})
}

// A sequence number is a JSON Schema integer: any number with no
// fraction. 1983261.0 was refused before (found by schemathesis); a
// fraction, a string, a negative number or one beyond uint64 still is,
// named by field, and alone.
func TestSeqIsAJSONSchemaInteger(t *testing.T) {
	now := time.Now().UTC()
	ts := now.Format(time.RFC3339Nano)
	for body, want := range map[string]string{
		`[{"patient_id":"P1","device_id":"d","kind":"spo2","value":97,"unit":"%","ts":"` + ts + `","seq":1983261.0}]`: "",
		`[{"patient_id":"P1","device_id":"d","kind":"spo2","value":97,"unit":"%","ts":"` + ts + `","seq":1e3}]`:       "",
		`[{"patient_id":"P1","device_id":"d","kind":"spo2","value":97,"unit":"%","ts":"` + ts + `","seq":1.5}]`:       "seq",
		`[{"patient_id":"P1","device_id":"d","kind":"spo2","value":97,"unit":"%","ts":"` + ts + `","seq":"7"}]`:       "seq",
		`[{"patient_id":"P1","device_id":"d","kind":"spo2","value":97,"unit":"%","ts":"` + ts + `","seq":-1.0}]`:      "seq",
		// Beyond uint64, and the fields after it are still read (a
		// decoder stopping at seq called them missing).
		`[{"patient_id":"P1","device_id":"d","seq":766832796906417946624,"kind":"spo2","value":97,"unit":"%","ts":"` + ts + `"}]`: "seq",
	} {
		rs, err := DecodeBatch([]byte(body), false, now)
		var be *BatchError
		switch {
		case want == "" && (err != nil || len(rs) != 1):
			t.Errorf("%s: %v", body, err)
		case want == "" && rs[0].Seq != 1983261 && rs[0].Seq != 1000:
			t.Errorf("%s: seq %d", body, rs[0].Seq)
		case want != "" && (!errors.As(err, &be) || len(be.Items) != 1 || be.Items[0].Field != want):
			t.Errorf("%s: %v, want a problem of %s", body, err, want)
		}
	}
}
