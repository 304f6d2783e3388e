package processors

import (
	"time"

	"github.com/monitorme/monitorme/schemas"
)

// RuleSet is the rules in force for one patient: the defaults, changed by
// the patient's ward and then by the patient's own entry in the rules file.
type RuleSet struct {
	// Ward is the patient's ward, "" for none.
	Ward       string
	Conditions []ConditionRule
	// NEWS2 enables the early warning score alert.
	NEWS2 bool
	// Hypercapnic patients (target SpO2 88–92 %, e.g. COPD with
	// hypercapnic respiratory failure) are scored on SpO2 scale 2.
	Hypercapnic bool
	// SignalLost lists the vitals whose silence is a technical alarm.
	SignalLost []SignalLostRule
	// Escalation is how long an alert of each priority may stay
	// unacknowledged before it is re-emitted as escalated; 0 never.
	Escalation map[schemas.Priority]time.Duration
}

// SignalLostRule raises "<kind>_signal_lost" when a patient who normally
// sends Kind (the last two readings arrived less than After apart) sends
// none for After: a probe fell off, a monitor lost power or network. It
// resolves with the next reading of Kind.
type SignalLostRule struct {
	Kind     schemas.Kind
	After    time.Duration
	Priority schemas.Priority
}

// ClinicalConfig is the configuration of the clinical handler.
type ClinicalConfig struct {
	// Default is the rule set of a patient the rules file does not name.
	Default RuleSet
	// Patients holds the effective rule set of every patient the rules
	// file names, directly or through a ward.
	Patients map[string]*RuleSet
	// NEWS2MaxAge is how old a parameter may be, relative to the reading
	// being processed, and still count; older is missing.
	NEWS2MaxAge time.Duration
	// NEWS2ResolveAfter is how long the score must stay in a lower band
	// before an open news2 alert is lowered or resolved.
	NEWS2ResolveAfter time.Duration
	// ExpireIdle is how long a patient may send nothing before the
	// processor forgets the patient: open alerts are resolved, and the
	// state is deleted from memory and, with a tombstone, from the
	// changelog. ExpireUnestablished is the same for a patient whose
	// devices never kept a cadence for a minute and who has no open
	// alert. Zero never expires. Set by --patient-expiry and
	// --patient-expiry-unestablished.
	ExpireIdle, ExpireUnestablished time.Duration
}

// For returns the rule set of a patient.
func (c *ClinicalConfig) For(patient string) *RuleSet {
	if rs := c.Patients[patient]; rs != nil {
		return rs
	}
	return &c.Default
}

// PatientRules returns the rules in force for patient as the API shows
// them, and whether the rules file names the patient (directly or through
// a ward). It makes a ClinicalConfig the API's RuleBook.
func (c *ClinicalConfig) PatientRules(patient string) (rules any, named bool) {
	return c.For(patient).View(), c.Patients[patient] != nil
}

// Ward returns the patient's ward, "" for none.
func (c *ClinicalConfig) Ward(patient string) string { return c.For(patient).Ward }

func limit(v float64) *float64 { return &v }

// DefaultClinicalConfig is the adult ward rule set: persistence delays on
// the fast vitals (a brief artefact raises nothing), critical limits with
// no delay, lower heart rate and respiration limits in sleep, NEWS2,
// signal-lost technical alarms on the continuously monitored vitals, and
// escalation of unacknowledged alarms. Slowly sampled vitals (blood
// pressure hourly, temperature, glucose) alarm on the reading itself and
// resolve on the next one in range.
func DefaultClinicalConfig() ClinicalConfig {
	const resolve = 30 * time.Second
	return ClinicalConfig{
		Default: RuleSet{
			Conditions: []ConditionRule{
				{Condition: "spo2_low", Kind: schemas.SpO2, Below: true, Limit: 90, Priority: schemas.High, Delay: 15 * time.Second, ResolveAfter: resolve},
				{Condition: "spo2_critical", Kind: schemas.SpO2, Below: true, Limit: 80, Priority: schemas.High, ResolveAfter: resolve},
				{Condition: "heart_rate_high", Kind: schemas.HeartRate, Limit: 120, Priority: schemas.Medium, Delay: 10 * time.Second, ResolveAfter: resolve},
				{Condition: "heart_rate_low", Kind: schemas.HeartRate, Below: true, Limit: 50, AsleepLimit: limit(40), Priority: schemas.Medium, Delay: 10 * time.Second, ResolveAfter: resolve},
				{Condition: "heart_rate_critical", Kind: schemas.HeartRate, Below: true, Limit: 30, Priority: schemas.High, ResolveAfter: resolve},
				{Condition: "resp_rate_low", Kind: schemas.RespRate, Below: true, Limit: 8, AsleepLimit: limit(6), Priority: schemas.High, Delay: 15 * time.Second, ResolveAfter: resolve},
				{Condition: "resp_rate_high", Kind: schemas.RespRate, Limit: 25, Priority: schemas.Medium, Delay: 30 * time.Second, ResolveAfter: resolve},
				{Condition: "bp_systolic_low", Kind: schemas.BPSystolic, Below: true, Limit: 90, AsleepLimit: limit(85), Priority: schemas.High},
				{Condition: "bp_systolic_high", Kind: schemas.BPSystolic, Limit: 180, Priority: schemas.Medium},
				{Condition: "temperature_low", Kind: schemas.Temperature, Below: true, Limit: 35, Priority: schemas.Medium},
				{Condition: "temperature_high", Kind: schemas.Temperature, Limit: 39, Priority: schemas.Medium},
				{Condition: "glucose_low", Kind: schemas.Glucose, Below: true, Limit: 70, Priority: schemas.High},
				{Condition: "glucose_high", Kind: schemas.Glucose, Limit: 250, Priority: schemas.Medium},
			},
			NEWS2: true,
			// The simulator's (and typical monitors') fast vitals arrive
			// every 1–5 s; 10–15 s of silence is a probe off, not jitter.
			SignalLost: []SignalLostRule{
				{Kind: schemas.HeartRate, After: 10 * time.Second, Priority: schemas.Medium},
				{Kind: schemas.SpO2, After: 15 * time.Second, Priority: schemas.Medium},
				{Kind: schemas.RespRate, After: 15 * time.Second, Priority: schemas.Low},
			},
			Escalation: map[schemas.Priority]time.Duration{
				schemas.High:   60 * time.Second,
				schemas.Medium: 5 * time.Minute,
				schemas.Low:    15 * time.Minute,
			},
		},
		NEWS2MaxAge:         90 * time.Minute,
		NEWS2ResolveAfter:   5 * time.Minute,
		ExpireIdle:          24 * time.Hour,
		ExpireUnestablished: 10 * time.Minute,
	}
}
