package api

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/monitorme/monitorme/internal/web"
	"github.com/monitorme/monitorme/schemas"
	chschema "github.com/monitorme/monitorme/schemas/clickhouse"
)

// PatientRecord is what the export holds of a patient over a range: the
// readings and the alert events (acknowledgements are the events in
// state acknowledged, with who acknowledged).
type PatientRecord struct {
	Readings []schemas.Reading
	Alerts   []schemas.Alert
}

// RecordSource reads a patient's record for a range from the topics, for
// a deployment without ClickHouse: the roles give one (inspect reads the
// topics), the API does not read topics from the start itself.
type RecordSource interface {
	PatientRecord(ctx context.Context, patient string, from, to time.Time) (PatientRecord, error)
}

// WithRecords serves the export from the topics when the server has no
// history store.
func WithRecords(src RecordSource) Option { return func(s *Server) { s.records = src } }

// Limits of the export: a month of one patient's readings at a monitor's
// pace fits (about 100,000 at one reading per 30 s per vital).
const (
	MaxExportRange    = 31 * 24 * time.Hour
	MaxExportReadings = 500_000
)

// ErrExportTooLarge is a range with more readings than MaxExportReadings.
var ErrExportTooLarge = errors.New("more readings than one export holds")

// RetentionError says the topics no longer hold the start of the range:
// their retention deleted it (a RecordSource returns it). HeldFrom is
// the time of the oldest record still held, zero when unknown.
type RetentionError struct {
	HeldFrom time.Time
	Err      error
}

func (e *RetentionError) Error() string {
	return "the topics no longer hold the start of the range: " + e.Err.Error()
}
func (e *RetentionError) Unwrap() error { return e.Err }

func (s *Server) export(c echo.Context) error {
	id, err := patientPath(c)
	if err != nil {
		return err
	}
	var h historyParams
	from, to := h.window(c, MaxExportRange)
	format := c.QueryParam("format")
	if format == "" {
		format = "fhir"
	}
	if format != "fhir" && format != "csv" {
		h.bad("format", "is fhir (an HL7 FHIR R4 Bundle) or csv, not %q", format)
	}
	if h.problems != nil {
		return badQuery(h.problems)
	}
	ctx := c.Request().Context()
	var rec PatientRecord
	next := h.next(c, to)
	var retention *RetentionError
	switch {
	case empty(from, to):
	case s.history != nil:
		rec, err = s.historyRecord(ctx, id, from, to)
		if err != nil && !errors.Is(err, ErrExportTooLarge) {
			return historyUnavailable(err)
		}
	case s.records != nil:
		rec, err = s.records.PatientRecord(ctx, id, from, to)
		switch {
		case errors.As(err, &retention):
			return beforeRetention(retention, from)
		case err != nil && !errors.Is(err, ErrExportTooLarge):
			// Not "ClickHouse did not answer": there is none here.
			p := web.NewProblem(http.StatusServiceUnavailable, "the brokers did not answer while the export read the topics (this server has no ClickHouse); retry shortly")
			p.RetryAfter, p.Cause = 5*time.Second, err
			return p
		}
	default:
		return web.NewProblem(http.StatusNotImplemented, "this server has neither ClickHouse (--clickhouse-addr) nor a reader of the topics to export from")
	}
	if errors.Is(err, ErrExportTooLarge) {
		// The document cannot say how many readings a range holds; a
		// schema-valid request so answers 409: this range, now, is
		// more than one export holds.
		p := web.NewProblem(http.StatusConflict, fmt.Sprintf("the range holds more than %d readings, more than one export holds: export it in parts (a shorter range from %s)", MaxExportReadings, from.Format(time.RFC3339)))
		p.Title = "Range too large to export"
		return p
	}
	slices.SortStableFunc(rec.Readings, func(a, b schemas.Reading) int { return a.TS.Compare(b.TS) })
	slices.SortStableFunc(rec.Alerts, func(a, b schemas.Alert) int { return a.TS.Compare(b.TS) })
	name := fmt.Sprintf("%s-%s-%s", id, from.UTC().Format("20060102T150405Z"), to.UTC().Format("20060102T150405Z"))
	if format == "csv" {
		c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`.csv"`)
		c.Response().Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		c.Response().WriteHeader(http.StatusOK)
		return writeCSV(c.Response(), rec)
	}
	bundle := FHIRBundle(id, from, to, rec, time.Now())
	if next != "" {
		// FHIR's paging: a Bundle's link with relation "next".
		bundle["link"] = []any{map[string]any{"relation": "next", "url": c.Request().URL.Path + "?" + next}}
	}
	b, err := json.Marshal(bundle)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`.json"`)
	return c.Blob(http.StatusOK, "application/fhir+json", b)
}

// beforeRetention is a 410: the topics no longer hold the range (or its
// start), and this server has no ClickHouse to hold it longer.
func beforeRetention(e *RetentionError, from time.Time) error {
	held := "the topics' retention deleted their older records"
	if !e.HeldFrom.IsZero() {
		held = "the topics hold this patient's records from " + e.HeldFrom.UTC().Format(time.RFC3339) + " on (their retention deleted the older ones)"
	}
	p := web.NewProblem(http.StatusGone, "the range starts at "+from.UTC().Format(time.RFC3339)+", before what this server can export: "+held+
		"; export a range from then on, or keep history longer in ClickHouse (--clickhouse-addr, docs/analysts.md)")
	p.Title = "Range beyond the topics' retention"
	p.Cause = e
	return p
}

// historyRecord reads the record from ClickHouse.
func (s *Server) historyRecord(ctx context.Context, id string, from, to time.Time) (PatientRecord, error) {
	var rec PatientRecord
	rows, err := s.history.RawVitals(ctx, chschema.VitalsQuery{Patient: id, From: from, To: to, Limit: MaxExportReadings + 1})
	if err != nil {
		return rec, err
	}
	if len(rows) > MaxExportReadings {
		return rec, ErrExportTooLarge
	}
	for _, r := range rows {
		rec.Readings = append(rec.Readings, schemas.Reading{PatientID: id, DeviceID: r.DeviceID, Kind: schemas.Kind(r.Kind), Value: r.Value, Unit: r.Unit, TS: r.TS.UTC(), Seq: r.Seq})
	}
	rec.Alerts, err = s.history.Alerts(ctx, chschema.AlertsQuery{Patient: id, From: from, To: to, Limit: MaxHistoryLimit})
	return rec, err
}

// writeCSV writes one row per reading and per alert event, in time order
// within each: kind is the vital, or "alert".
func writeCSV(w http.ResponseWriter, rec PatientRecord) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"record", "ts", "patient_id", "kind", "value", "unit", "device_id", "seq", "alert_id", "condition", "priority", "state", "acked_by", "message"})
	for _, r := range rec.Readings {
		_ = cw.Write([]string{"reading", r.TS.UTC().Format(time.RFC3339Nano), r.PatientID, string(r.Kind), strconv.FormatFloat(r.Value, 'f', -1, 64), r.Unit, r.DeviceID, strconv.FormatUint(r.Seq, 10), "", "", "", "", "", ""})
	}
	for _, a := range rec.Alerts {
		record := "alert"
		if a.State == schemas.Acknowledged {
			record = "acknowledgement"
		}
		_ = cw.Write([]string{record, a.TS.UTC().Format(time.RFC3339Nano), a.PatientID, string(a.Reading.Kind), strconv.FormatFloat(a.Reading.Value, 'f', -1, 64), a.Reading.Unit, a.Reading.DeviceID, strconv.FormatUint(a.Reading.Seq, 10),
			a.AlertID, a.Condition, string(a.Priority), string(a.State), a.AckedBy, a.Message})
	}
	cw.Flush()
	return cw.Error()
}

// Coding is a FHIR Coding.
type Coding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

// LOINC is the LOINC code of each vital; sleep and supplemental oxygen
// have no LOINC code that means what the reading means, and ECG is a
// waveform sample (ISO/IEEE 11073 MDC): those take the codes of
// codeSystem.
var LOINC = map[schemas.Kind]Coding{
	schemas.HeartRate:     {"http://loinc.org", "8867-4", "Heart rate"},
	schemas.BPSystolic:    {"http://loinc.org", "8480-6", "Systolic blood pressure"},
	schemas.BPDiastolic:   {"http://loinc.org", "8462-4", "Diastolic blood pressure"},
	schemas.SpO2:          {"http://loinc.org", "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"},
	schemas.Glucose:       {"http://loinc.org", "2339-0", "Glucose [Mass/volume] in Blood"},
	schemas.RespRate:      {"http://loinc.org", "9279-1", "Respiratory rate"},
	schemas.Temperature:   {"http://loinc.org", "8310-5", "Body temperature"},
	schemas.Consciousness: {"http://loinc.org", "67775-7", "Level of responsiveness"},
	schemas.ECG:           {"urn:iso:std:iso:11073:10101", "131328", "MDC_ECG_ELEC_POTL"},
}

// codeSystem names MonitorMe's own codes: the kinds without a standard
// code, and the alert conditions.
const codeSystem = "https://monitorme.example/fhir/CodeSystem/"

// FHIRBundle is the patient's record as an HL7 FHIR R4 Bundle of type
// collection: the Patient (by MonitorMe's id), an Observation per reading
// (category vital-signs, LOINC code, UCUM quantity), and a DetectedIssue
// per alert event, its acknowledgement as a mitigation. Ids are derived
// from the content, so the same record exports to the same bundle.
func FHIRBundle(patient string, from, to time.Time, rec PatientRecord, now time.Time) map[string]any {
	pid := uuidOf("patient", patient)
	subject := map[string]any{"reference": "urn:uuid:" + pid}
	entries := []any{entry(pid, map[string]any{
		"resourceType": "Patient",
		"identifier":   []any{map[string]any{"system": "urn:monitorme:patient", "value": patient}},
	})}
	for _, r := range rec.Readings {
		code, ok := LOINC[r.Kind]
		if !ok {
			code = Coding{codeSystem + "vital", string(r.Kind), string(r.Kind)}
		}
		id := uuidOf("reading", r.DeviceID, string(r.Kind), strconv.FormatUint(r.Seq, 10), r.TS.UTC().Format(time.RFC3339Nano))
		entries = append(entries, entry(id, map[string]any{
			"resourceType":      "Observation",
			"identifier":        []any{map[string]any{"system": "urn:monitorme:reading", "value": r.DeviceID + "/" + string(r.Kind) + "/" + strconv.FormatUint(r.Seq, 10)}},
			"status":            "final",
			"category":          []any{map[string]any{"coding": []any{Coding{"http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs", "Vital Signs"}}}},
			"code":              map[string]any{"coding": []any{code}, "text": string(r.Kind)},
			"subject":           subject,
			"effectiveDateTime": r.TS.UTC().Format(time.RFC3339Nano),
			"valueQuantity":     map[string]any{"value": r.Value, "unit": r.Unit, "system": "http://unitsofmeasure.org", "code": r.Unit},
			"device":            map[string]any{"display": r.DeviceID},
		}))
	}
	for _, a := range rec.Alerts {
		severity := map[schemas.Priority]string{schemas.High: "high", schemas.Medium: "moderate", schemas.Low: "low"}[a.Priority]
		status := "preliminary"
		switch a.State {
		case schemas.Acknowledged:
			status = "amended"
		case schemas.Resolved, schemas.ResolvedUnacknowledged:
			status = "final"
		}
		issue := map[string]any{
			"resourceType": "DetectedIssue",
			"identifier":   []any{map[string]any{"system": "urn:monitorme:alert", "value": a.AlertID}},
			"status":       status,
			"code": map[string]any{"coding": []any{Coding{codeSystem + "alert-condition", a.Condition, a.Condition}},
				"text": string(a.State) + ": " + a.Condition},
			"patient":            subject,
			"identifiedDateTime": a.TS.UTC().Format(time.RFC3339Nano),
			"detail":             a.Message,
		}
		if severity != "" {
			issue["severity"] = severity
		}
		if a.State == schemas.Acknowledged {
			issue["mitigation"] = []any{map[string]any{
				"action": map[string]any{"coding": []any{Coding{codeSystem + "alarm-action", "acknowledged", "Alarm acknowledged"}}, "text": "acknowledged"},
				"date":   a.TS.UTC().Format(time.RFC3339Nano),
				"author": map[string]any{"display": a.AckedBy},
			}}
		}
		entries = append(entries, entry(uuidOf("alert", a.AlertID, string(a.State), a.TS.UTC().Format(time.RFC3339Nano)), issue))
	}
	return map[string]any{
		"resourceType": "Bundle",
		"id":           uuidOf("bundle", patient, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano)),
		"meta":         map[string]any{"lastUpdated": now.UTC().Format(time.RFC3339Nano)},
		"type":         "collection",
		"timestamp":    now.UTC().Format(time.RFC3339Nano),
		"entry":        entries,
	}
}

func entry(id string, resource map[string]any) map[string]any {
	resource["id"] = id
	return map[string]any{"fullUrl": "urn:uuid:" + id, "resource": resource}
}

// uuidOf is a name-based UUID (version 8, from SHA-256) of parts.
func uuidOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	b := h.Sum(nil)[:16]
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
