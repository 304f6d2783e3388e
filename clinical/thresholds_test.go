package clinical

import (
	"testing"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

func TestEvaluate(t *testing.T) {
	ts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		kind  schemas.Kind
		value float64
		want  string // condition, or "" for none
	}{
		{schemas.HeartRate, 72, ""},
		{schemas.HeartRate, 50, ""},
		{schemas.HeartRate, 49, "heart_rate_low"},
		{schemas.HeartRate, 120, ""},
		{schemas.HeartRate, 121, "heart_rate_high"},
		{schemas.HeartRate, 0, "heart_rate_low"},
		{schemas.SpO2, 90, ""},
		{schemas.SpO2, 89, "spo2_low"},
		{schemas.RespRate, 7, "resp_rate_low"},
		{schemas.RespRate, 26, "resp_rate_high"},
		{schemas.BPSystolic, 89, "bp_systolic_low"},
		{schemas.BPSystolic, 181, "bp_systolic_high"},
		{schemas.BPDiastolic, 40, ""},
		{schemas.Temperature, 34.9, "temperature_low"},
		{schemas.Temperature, 39.1, "temperature_high"},
		{schemas.Temperature, 39, ""},
		{schemas.Glucose, 69, "glucose_low"},
		{schemas.Glucose, 251, "glucose_high"},
		{schemas.ECG, 0.5, ""},
		{schemas.Sleep, 1, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind)+"="+fmtValue(tt.value), func(t *testing.T) {
			spec, _ := schemas.SpecFor(tt.kind)
			r := schemas.Reading{PatientID: "P1", DeviceID: "D1", Kind: tt.kind, Value: tt.value, Unit: spec.Unit, TS: ts, Seq: 4}
			got := Evaluate(DefaultLimits, &r)
			if tt.want == "" {
				if len(got) != 0 {
					t.Fatalf("want no alert, got %+v", got)
				}
				return
			}
			if len(got) != 1 || got[0].Condition != tt.want {
				t.Fatalf("want %s, got %+v", tt.want, got)
			}
			a := got[0]
			if a.PatientID != "P1" || a.State != schemas.Raised || !a.TS.Equal(ts) || a.Reading != r || a.AlertID != schemas.AlertID(tt.want, &r) {
				t.Fatalf("alert fields: %+v", a)
			}
		})
	}
}

func BenchmarkEvaluate(b *testing.B) {
	r := schemas.Reading{PatientID: "P1", DeviceID: "D1", Kind: schemas.HeartRate, Value: 80, Unit: "/min", TS: time.Now(), Seq: 4}
	b.ReportAllocs()
	for b.Loop() {
		Evaluate(DefaultLimits, &r)
	}
}
