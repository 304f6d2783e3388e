package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/twmb/franz-go/pkg/kgo"
)

func compile(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	entries, err := fs.Glob(Files, "*.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, _ := Files.ReadFile(e)
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		if err := c.AddResource("https://monitorme.example/schemas/"+e, doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Compile("https://monitorme.example/schemas/" + name)
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return s
}

// The JSON Schema file and the Go validation must accept and reject the
// same readings, or the published contract lies.
func TestReadingSchemaAgreesWithGo(t *testing.T) {
	s := compile(t, ReadingV1+".schema.json")
	var cases []string
	for _, spec := range Specs {
		for _, v := range []float64{spec.Min, spec.Max, spec.Min - 1, spec.Max + 1, (spec.Min + spec.Max) / 2} {
			cases = append(cases, fmt.Sprintf(`{"patient_id":"P1","device_id":"D1","kind":%q,"value":%v,"unit":%q,"ts":"2026-11-22T09:00:00Z","seq":3}`, spec.Kind, v, spec.Unit))
		}
		cases = append(cases, fmt.Sprintf(`{"patient_id":"P1","device_id":"D1","kind":%q,"value":%v,"unit":"x","ts":"2026-11-22T09:00:00Z","seq":3}`, spec.Kind, spec.Min))
	}
	cases = append(cases,
		item(`"heart_rate"`, `"pulse"`), item(`"P1"`, `""`), item(`"P1"`, `"P 1"`), item(`"seq":1`, `"seq":-1`),
		item(`"seq":1`, `"seq":1,"x":1`), item(`"value":72,`, ``), item(`2026-11-22T09:59:59Z`, `nope`))
	for _, c := range cases {
		_, goErr := DecodeBatch([]byte("["+c+"]"), false, now)
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(c)))
		if err != nil {
			t.Fatal(err)
		}
		schemaErr := s.Validate(doc)
		if (goErr == nil) != (schemaErr == nil) {
			t.Errorf("%s\n  Go: %v\n  JSON Schema: %v", c, goErr, schemaErr)
		}
	}
}

func TestReadingSchemaListsEveryKind(t *testing.T) {
	b, _ := Files.ReadFile(ReadingV1 + ".schema.json")
	var doc struct {
		Properties struct {
			Kind struct {
				Enum []Kind `json:"enum"`
			} `json:"kind"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var want []Kind
	for _, s := range Specs {
		want = append(want, s.Kind)
	}
	if !slices.Equal(doc.Properties.Kind.Enum, want) {
		t.Fatalf("schema kinds %v, Go kinds %v", doc.Properties.Kind.Enum, want)
	}
}

func TestAlertValidatesAgainstSchema(t *testing.T) {
	s := compile(t, AlertV1+".schema.json")
	r := Reading{PatientID: "P1", DeviceID: "D1", Kind: SpO2, Value: 85, Unit: "%", TS: now.Add(-time.Second), Seq: 9}
	a := Alert{AlertID: AlertID("spo2_low", &r), PatientID: "P1", Condition: "spo2_low", Priority: High, State: Raised, TS: r.TS, Limit: 90, Message: "SpO2 85 % below 90", Reading: r}
	b, _ := json.Marshal(a)
	doc, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err := s.Validate(doc); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	back, err := DecodeAlert(&kgo.Record{Key: []byte("P1"), Value: b, Headers: []kgo.RecordHeader{{Key: HeaderSchema, Value: []byte(AlertV1)}}})
	if err != nil || back.AlertID != a.AlertID || !back.Reading.TS.Equal(r.TS) {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	doc.(map[string]any)["priority"] = "urgent"
	if s.Validate(doc) == nil {
		t.Fatal("schema accepted priority urgent")
	}
}

func TestAckSchemaAgreesWithGo(t *testing.T) {
	s := compile(t, AckV1+".schema.json")
	good := `{"alert_id":"0123456789abcdef0123456789abcdef","patient_id":"P1","by":"nurse-7","ts":"2026-11-22T09:00:00Z"}`
	cases := []string{good,
		strings.Replace(good, "0123456789abcdef0", "X123456789abcdef0", 1),
		strings.Replace(good, `"nurse-7"`, `""`, 1),
		strings.Replace(good, `"P1"`, `"P 1"`, 1),
		strings.Replace(good, `,"ts":"2026-11-22T09:00:00Z"`, ``, 1),
	}
	for i, c := range cases {
		var a Ack
		goErr := json.Unmarshal([]byte(c), &a)
		if goErr == nil {
			goErr = a.Validate()
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(c)))
		if err != nil {
			t.Fatal(err)
		}
		schemaErr := s.Validate(doc)
		if (goErr == nil) != (schemaErr == nil) || (i == 0) != (goErr == nil) {
			t.Errorf("%s\n  Go: %v\n  JSON Schema: %v", c, goErr, schemaErr)
		}
	}
}
