package clinical

// The threshold rules: an alert for every reading beyond a fixed limit,
// with no state. The e2e suite counts alerts against readings with them
// (--rules threshold, processors.Thresholds); the engine's condition rules
// are the default.

import (
	"strconv"

	"github.com/monitorme/monitorme/schemas"
)

// Limit is one per-vital threshold: a reading of Kind below (Below) or
// above Value raises Condition at Priority.
type Limit struct {
	Kind      schemas.Kind
	Condition string
	Below     bool
	Value     float64
	Priority  schemas.Priority
}

// DefaultLimits are adult ward limits. Priorities follow IEC 60601-1-8:
// high where harm is likely within minutes (hypoxaemia, apnoea-range
// respiration, hypotension, hypoglycaemia), medium otherwise.
var DefaultLimits = []Limit{
	{schemas.HeartRate, "heart_rate_low", true, 50, schemas.Medium},
	{schemas.HeartRate, "heart_rate_high", false, 120, schemas.Medium},
	{schemas.SpO2, "spo2_low", true, 90, schemas.High},
	{schemas.RespRate, "resp_rate_low", true, 8, schemas.High},
	{schemas.RespRate, "resp_rate_high", false, 25, schemas.Medium},
	{schemas.BPSystolic, "bp_systolic_low", true, 90, schemas.High},
	{schemas.BPSystolic, "bp_systolic_high", false, 180, schemas.Medium},
	{schemas.Temperature, "temperature_low", true, 35, schemas.Medium},
	{schemas.Temperature, "temperature_high", false, 39, schemas.Medium},
	{schemas.Glucose, "glucose_low", true, 70, schemas.High},
	{schemas.Glucose, "glucose_high", false, 250, schemas.Medium},
}

// Evaluate returns the alerts r raises under limits. A value equal to a
// limit is in range: "heart rate > 120" alerts at 121, not at 120.
func Evaluate(limits []Limit, r *schemas.Reading) []schemas.Alert {
	var out []schemas.Alert
	for i := range limits {
		l := &limits[i]
		if l.Kind != r.Kind {
			continue
		}
		if l.Below && !(r.Value < l.Value) || !l.Below && !(r.Value > l.Value) {
			continue
		}
		side := "above"
		if l.Below {
			side = "below"
		}
		out = append(out, schemas.Alert{
			AlertID:   schemas.AlertID(l.Condition, r),
			PatientID: r.PatientID,
			Condition: l.Condition,
			Priority:  l.Priority,
			State:     schemas.Raised,
			TS:        r.TS,
			Limit:     l.Value,
			Message:   string(r.Kind) + " " + fmtValue(r.Value) + " " + r.Unit + " " + side + " " + fmtValue(l.Value),
			Reading:   *r,
		})
	}
	return out
}

func fmtValue(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
