package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/monitorme/monitorme/schemas"
	chschema "github.com/monitorme/monitorme/schemas/clickhouse"
)

// fhirSchema compiles HL7's FHIR R4 JSON schema (testdata/fhir).
func fhirSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("testdata/fhir/fhir.schema.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(zr)
	if err != nil {
		t.Fatal(err)
	}
	// Medplum's copy refers to two definitions it leaves out (README.md);
	// the bundle uses neither.
	defs := doc.(map[string]any)["definitions"].(map[string]any)
	defs["integer64"] = map[string]any{"type": "string", "pattern": "^[0]|[-]?[1-9][0-9]*$"}
	defs["Resource"] = map[string]any{"type": "object"}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft6)
	if err := c.AddResource("fhir.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("fhir.schema.json")
	if err != nil {
		t.Fatalf("compile the FHIR schema: %v", err)
	}
	return s
}

// fakeRecords is a RecordSource with fixed contents.
type fakeRecords struct {
	rec PatientRecord
	err error
}

func (f fakeRecords) PatientRecord(_ context.Context, _ string, _, _ time.Time) (PatientRecord, error) {
	return f.rec, f.err
}

func exportRecord() PatientRecord {
	var rec PatientRecord
	for i, k := range []schemas.Kind{schemas.HeartRate, schemas.SpO2, schemas.RespRate, schemas.BPSystolic, schemas.BPDiastolic,
		schemas.Temperature, schemas.Glucose, schemas.ECG, schemas.Sleep, schemas.O2Supplement, schemas.Consciousness} {
		spec, _ := schemas.SpecFor(k)
		rec.Readings = append(rec.Readings, schemas.Reading{PatientID: "P1", DeviceID: "P1-dev", Kind: k, Value: spec.Min + 1, Unit: spec.Unit,
			TS: t0.Add(time.Duration(i) * time.Second), Seq: uint64(i + 1)})
	}
	r := rec.Readings[1]
	raised := schemas.Alert{AlertID: "0123456789abcdef0123456789abcdef", PatientID: "P1", Condition: "spo2_critical", Priority: schemas.High,
		State: schemas.Raised, TS: t0.Add(2 * time.Second), Limit: 80, Message: "spo2 1 % below 80", Reading: r}
	acked := raised
	acked.State, acked.TS, acked.AckedBy = schemas.Acknowledged, t0.Add(20*time.Second), "nurse-7"
	resolved := raised
	resolved.State, resolved.TS = schemas.Resolved, t0.Add(60*time.Second)
	rec.Alerts = []schemas.Alert{resolved, raised, acked} // out of order: the export sorts
	return rec
}

// The export of a patient validates as a FHIR R4 Bundle: an Observation
// per reading with its LOINC (or named) code and UCUM unit, a
// DetectedIssue per alert event, the acknowledgement as a mitigation by
// who acknowledged.
func TestExportIsAValidFHIRBundle(t *testing.T) {
	s := fhirSchema(t)
	_, e := newTestServer(t, DefaultLiveConfig(), WithRecords(fakeRecords{rec: exportRecord()}))
	code, body, hdr := get(t, e, "/v1/patients/P1/export?from="+t0.Add(-time.Hour).Format(time.RFC3339)+"&to="+t0.Add(time.Hour).Format(time.RFC3339))
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/fhir+json" {
		t.Errorf("Content-Type %q", ct)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(doc); err != nil {
		t.Fatalf("the bundle is not valid FHIR R4: %v\n%s", err, body)
	}
	var b struct {
		ResourceType, Type string
		Entry              []struct {
			Resource map[string]any
		}
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	var loinc, ucum []string
	var mitigatedBy string
	for _, en := range b.Entry {
		rt := en.Resource["resourceType"].(string)
		counts[rt]++
		switch rt {
		case "Observation":
			c := en.Resource["code"].(map[string]any)["coding"].([]any)[0].(map[string]any)
			loinc = append(loinc, c["system"].(string)+"|"+c["code"].(string))
			ucum = append(ucum, en.Resource["valueQuantity"].(map[string]any)["code"].(string))
		case "DetectedIssue":
			if m, ok := en.Resource["mitigation"].([]any); ok {
				mitigatedBy = m[0].(map[string]any)["author"].(map[string]any)["display"].(string)
			}
		}
	}
	if b.ResourceType != "Bundle" || b.Type != "collection" || counts["Patient"] != 1 || counts["Observation"] != 11 || counts["DetectedIssue"] != 3 {
		t.Errorf("bundle %s/%s with %v", b.ResourceType, b.Type, counts)
	}
	if !strings.Contains(strings.Join(loinc, " "), "http://loinc.org|8867-4") || !strings.Contains(strings.Join(loinc, " "), "http://loinc.org|59408-5") {
		t.Errorf("codes %v: no LOINC heart rate or SpO2", loinc)
	}
	if !strings.Contains(strings.Join(ucum, " "), "mm[Hg]") || !strings.Contains(strings.Join(ucum, " "), "Cel") {
		t.Errorf("units %v: not UCUM", ucum)
	}
	if mitigatedBy != "nurse-7" {
		t.Errorf("acknowledgement by %q, want nurse-7", mitigatedBy)
	}

	// A bundle the schema refuses is refused: the check can fail.
	var bad map[string]any
	_ = json.Unmarshal(body, &bad)
	bad["type"] = "not-a-bundle-type"
	raw, _ := json.Marshal(bad)
	doc, _ = jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if s.Validate(doc) == nil {
		t.Error("the FHIR schema accepted a bundle of type not-a-bundle-type")
	}
}

// The same export as CSV: one row per reading and per alert event, the
// acknowledgement named as one, in time order.
func TestExportCSV(t *testing.T) {
	_, e := newTestServer(t, DefaultLiveConfig(), WithRecords(fakeRecords{rec: exportRecord()}))
	code, body, hdr := get(t, e, "/v1/patients/P1/export?format=csv&from="+t0.Add(-time.Hour).Format(time.RFC3339)+"&to="+t0.Add(time.Hour).Format(time.RFC3339))
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
		t.Fatalf("status %d, %s: %s", code, hdr.Get("Content-Type"), body)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+11+3 {
		t.Fatalf("%d rows, want a header, 11 readings and 3 alert events", len(rows))
	}
	if rows[12][0] != "alert" || rows[12][11] != "raised" || rows[13][0] != "acknowledgement" || rows[13][12] != "nurse-7" || rows[14][11] != "resolved" {
		t.Errorf("alert rows out of order or wrong: %q", rows[12:])
	}
}

// The export reads ClickHouse when there is one; without a source it
// says so; a bad range or format is a 400 naming it; a failing store is
// a 503.
func TestExportSourcesAndErrors(t *testing.T) {
	h := &fakeHistory{raw: []chschema.RawVital{{Kind: "heart_rate", TS: t0, Value: 70, Unit: "/min", DeviceID: "d1", Seq: 1}}}
	_, e := newTestServer(t, DefaultLiveConfig(), WithHistory(h), WithRecords(fakeRecords{err: errors.New("must not be asked")}))
	if code, body, _ := get(t, e, "/v1/patients/P1/export?format=csv"); code != http.StatusOK || !strings.Contains(string(body), "reading,") {
		t.Errorf("from ClickHouse: %d %s", code, body)
	}
	if len(h.vq) != 1 || h.vq[0].Patient != "P1" || h.vq[0].Step != 0 {
		t.Errorf("ClickHouse asked %+v", h.vq)
	}
	_, e = newTestServer(t, DefaultLiveConfig())
	if code, _, _ := get(t, e, "/v1/patients/P1/export"); code != http.StatusNotImplemented {
		t.Errorf("no source: %d", code)
	}
	_, e = newTestServer(t, DefaultLiveConfig(), WithRecords(fakeRecords{err: errors.New("brokers down")}))
	// Issue 26: the error names the real cause. Before, a failing read of
	// the topics said "the history store (ClickHouse) did not answer" on
	// a server with no ClickHouse, and so did a range the topics' retention
	// had deleted.
	if code, body, _ := get(t, e, "/v1/patients/P1/export"); code != http.StatusServiceUnavailable ||
		!strings.Contains(string(body), "brokers did not answer") || strings.Contains(string(body), "history store") {
		t.Errorf("failing source: %d %s", code, body)
	}
	held := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	_, gone := newTestServer(t, DefaultLiveConfig(), WithRecords(fakeRecords{err: &RetentionError{HeldFrom: held, Err: errors.New("expired")}}))
	if code, body, _ := get(t, gone, "/v1/patients/P1/export?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z"); code != http.StatusGone ||
		!strings.Contains(string(body), "from 2026-12-01T00:00:00Z on") || !strings.Contains(string(body), "--clickhouse-addr") {
		t.Errorf("a range the topics no longer hold: %d %s", code, body)
	}
	if code, body, _ := get(t, newServerWithout(t), "/v1/patients/P1/export"); code != http.StatusNotImplemented || !strings.Contains(string(body), "--clickhouse-addr") {
		t.Errorf("no source names what to configure: %d %s", code, body)
	}
	_, paged := newTestServer(t, DefaultLiveConfig(), WithRecords(fakeRecords{rec: exportRecord()}))
	code, body, hdr := get(t, paged, "/v1/patients/P1/export?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z")
	if code != http.StatusOK || !strings.Contains(string(body), `"relation":"next"`) || !strings.Contains(hdr.Get("Link"), "from=2026-02-01T00%3A00%3A00Z") {
		t.Errorf("two months: %d %q %.300s", code, hdr.Get("Link"), body)
	}
	for _, q := range []string{"format=xml", "from=yesterday", "format=", "to=1322-13-01T00:00:00Z"} {
		if code, body, _ := get(t, e, "/v1/patients/P1/export?"+q); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, code, body)
		}
	}
}

func newServerWithout(t *testing.T) *echo.Echo {
	_, e := newTestServer(t, DefaultLiveConfig())
	return e
}
