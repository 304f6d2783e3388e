package clinical

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
	// Escalation is, per priority, the tiers an unacknowledged alert
	// climbs: each tier's After counts from the raise or the previous
	// escalation, and the last tier repeats until someone acknowledges.
	// No tier (or an After of 0) never escalates.
	Escalation map[schemas.Priority][]EscalationTier
	// Latch is the lowest priority whose alarms latch: an alarm of it
	// whose condition clears before anyone acknowledged it stays on the
	// station as resolved-unacknowledged until acknowledged. "" latches
	// none.
	Latch schemas.Priority
	// SatSeconds, when set, integrates desaturation: SpO2 hovering just
	// below the limit alarms, not only a continuous run.
	SatSeconds *SatSecondsRule
}

// EscalationTier is one step of escalation: After without an
// acknowledgement, notify Notify (a role or team, carried on the event).
type EscalationTier struct {
	After  time.Duration
	Notify string
}

// SatSecondsRule is the SatSeconds idea (depth × duration below the
// limit) for saturation hovering around the limit: each dip below Limit
// counts (Limit − value) × the time since the previous reading (at most
// maxSatStep) per reading, and when the dip ends (a reading in range)
// before the spo2 alarms raised anything, it is added to an integral that
// decays with time constant Tau while SpO2 is in range. Condition
// "spo2_satseconds" is raised when the integral reaches Threshold (in % ×
// s) and resolved when it has decayed below half of it. A continuous
// desaturation is spo2_low's; this one adds up the brief dips that each
// end before spo2_low's delay.
type SatSecondsRule struct {
	Limit     float64
	Threshold float64
	Tau       time.Duration
	Priority  schemas.Priority
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

// Config is the configuration of the clinical handler.
type Config struct {
	// Default is the rule set of a patient the rules file does not name.
	Default RuleSet
	// Patients holds the effective rule set of every patient the rules
	// file names, directly or through a ward.
	Patients map[string]*RuleSet
	// Wards holds each ward's rule set: a patient the rules file does
	// not name gets the one of the ward of the patient's placement.
	Wards map[string]*RuleSet
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
	// ReorderWindow is how far, in event time, a reading may be older
	// than the patient's newest reading of its kind and still be placed
	// in order by the rules. An older one is late: it is history (the
	// sink stores it) but changes no live alarm.
	ReorderWindow time.Duration
	// MaxAge is how old a reading may be when it arrives (arrival minus
	// event time) and still raise, escalate or resolve an alarm; older
	// readings update the rules' state silently. 0: no bound.
	MaxAge time.Duration
	// SleepMaxAge is how long a sleep status lowers limits: an older one
	// is stale and the awake limits apply.
	SleepMaxAge time.Duration
	// NEWS2Require lists the parameters that must be present (within
	// NEWS2MaxAge) for NEWS2 to be scored at all.
	NEWS2Require []schemas.Kind
	// NEWS2Delay is how long a worse band must persist, in event time,
	// before the news2 alert is raised or raised again.
	NEWS2Delay time.Duration
	// NEWS2UpdateEvery bounds how often an open news2 alert is updated in
	// place when its score changes within its band.
	NEWS2UpdateEvery time.Duration
	// NEWS2SetWindow defines a charted observation set: a reading of a
	// kind with no other reading of it in the window before it, after
	// which every required parameter was measured within the window. Such
	// a set is scored and alarmed at once, as RCP charts it; persistence
	// guards only a score that monitored values moved.
	NEWS2SetWindow time.Duration
}

// For returns the rule set of a patient.
func (c *Config) For(patient string) *RuleSet {
	if rs := c.Patients[patient]; rs != nil {
		return rs
	}
	return &c.Default
}

// ForWard returns the rule set of a patient placed in ward: the rules
// file's own entry for the patient if it has one (a clinician's choice for
// this patient outlives a transfer), else the ward's, else the default.
func (c *Config) ForWard(patient, ward string) *RuleSet {
	if rs := c.Patients[patient]; rs != nil {
		return rs
	}
	if rs := c.Wards[ward]; rs != nil {
		return rs
	}
	return &c.Default
}

// Named says whether the rules file lists patient under patients (with
// or without a ward): its rules are then the patient's own.
func (c *Config) Named(patient string) bool { return c.Patients[patient] != nil }

// Ward returns the patient's ward, "" for none.
func (c *Config) Ward(patient string) string { return c.For(patient).Ward }

// CurrentNEWS2 is a patient's NEWS2 score and its event time from the latest readings, scored as
// the engine scores it: the newest parameter's time is the score's, older
// parameters count within NEWS2MaxAge of it, and the required ones must
// be there (else ok is false). For the API, which has no engine state: the band
// shown here is the score's, before the persistence the alert waits for.
func (c *Config) CurrentNEWS2(patient string, latest map[schemas.Kind]schemas.Reading) (_ NEWS2Score, at time.Time, ok bool) {
	rs := c.For(patient)
	if !rs.NEWS2 {
		return NEWS2Score{}, at, false
	}
	for _, k := range news2Parameters {
		if r, ok := latest[k]; ok && r.TS.After(at) {
			at = r.TS
		}
	}
	for _, k := range c.NEWS2Require {
		if r, ok := latest[k]; !ok || at.Sub(r.TS) > c.NEWS2MaxAge {
			return NEWS2Score{}, at, false
		}
	}
	var vals news2Values
	in := c.news2Input(func(k schemas.Kind) (float64, time.Time, bool) {
		r, ok := latest[k]
		return r.Value, r.TS, ok
	}, rs.Hypercapnic, at, &vals)
	return ScoreNEWS2(in), at, true
}

func limit(v float64) *float64 { return &v }

// news2Parameters are the seven parameters of the chart.
var news2Parameters = []schemas.Kind{schemas.RespRate, schemas.SpO2, schemas.O2Supplement, schemas.BPSystolic,
	schemas.HeartRate, schemas.Consciousness, schemas.Temperature}

// MAP is the mean arterial pressure, (systolic + 2 × diastolic) / 3,
// derived when both pressures of one measurement are present: a kind no
// reading has, which rules can name.
const MAP schemas.Kind = "map"

// mapPairWindow is how far apart a systolic and a diastolic reading may be
// and still be one measurement.
const mapPairWindow = 2 * time.Minute

// specFor is schemas.SpecFor, with the derived kinds.
func specFor(k schemas.Kind) (schemas.Spec, bool) {
	if k == MAP {
		return schemas.Spec{Kind: MAP, Unit: "mm[Hg]", Min: 0, Max: 350}, true
	}
	return schemas.SpecFor(k)
}

// DefaultConfig is the adult ward rule set: persistence delays on
// the fast vitals (a brief artefact raises nothing), critical limits with
// no delay, lower heart rate and respiration limits in sleep, NEWS2,
// signal-lost technical alarms on the continuously monitored vitals, and
// escalation of unacknowledged alarms. Slowly sampled vitals (blood
// pressure hourly, temperature, glucose) alarm on the reading itself and
// resolve on the next one in range.
func DefaultConfig() Config {
	const resolve = 30 * time.Second
	return Config{
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
				// Red alarms for extreme tachycardia and bradycardia,
				// after a short delay so that one artefact raises none.
				{Condition: "heart_rate_extreme_high", Kind: schemas.HeartRate, Limit: 150, Priority: schemas.High, Delay: 5 * time.Second, ResolveAfter: resolve},
				{Condition: "heart_rate_extreme_low", Kind: schemas.HeartRate, Below: true, Limit: 40, Priority: schemas.High, Delay: 5 * time.Second, ResolveAfter: resolve},
				{Condition: "bp_diastolic_low", Kind: schemas.BPDiastolic, Below: true, Limit: 40, Priority: schemas.Medium},
				{Condition: "bp_diastolic_high", Kind: schemas.BPDiastolic, Limit: 110, Priority: schemas.Medium},
				{Condition: "map_low", Kind: MAP, Below: true, Limit: 65, Priority: schemas.High},
				{Condition: "map_high", Kind: MAP, Limit: 130, Priority: schemas.Medium},
				// ST deviation beyond ±0.2 mV (2 mm) for a minute.
				{Condition: "st_deviation", Kind: schemas.ECG, Abs: true, Limit: 0.2, Priority: schemas.Medium, Delay: time.Minute, ResolveAfter: time.Minute},
			},
			NEWS2: true,
			// The simulator's (and typical monitors') fast vitals arrive
			// every 1–5 s; 10–15 s of silence is a probe off, not jitter.
			SignalLost: []SignalLostRule{
				{Kind: schemas.HeartRate, After: 10 * time.Second, Priority: schemas.Medium},
				{Kind: schemas.SpO2, After: 15 * time.Second, Priority: schemas.Medium},
				{Kind: schemas.RespRate, After: 15 * time.Second, Priority: schemas.Low},
			},
			Escalation: map[schemas.Priority][]EscalationTier{
				schemas.High:   {{After: 60 * time.Second, Notify: "nurse-in-charge"}, {After: 2 * time.Minute, Notify: "rapid-response-team"}},
				schemas.Medium: {{After: 5 * time.Minute, Notify: "nurse-in-charge"}, {After: 10 * time.Minute, Notify: "ward-doctor"}},
				schemas.Low:    {{After: 15 * time.Minute, Notify: "nurse-in-charge"}},
			},
			Latch:      schemas.High,
			SatSeconds: &SatSecondsRule{Limit: 90, Threshold: 50, Tau: time.Minute, Priority: schemas.Medium},
		},
		NEWS2MaxAge:         90 * time.Minute,
		NEWS2ResolveAfter:   5 * time.Minute,
		ExpireIdle:          24 * time.Hour,
		ExpireUnestablished: 10 * time.Minute,
		ReorderWindow:       30 * time.Second,
		MaxAge:              5 * time.Minute,
		SleepMaxAge:         4 * time.Hour,
		NEWS2Require:        news2Parameters,
		NEWS2Delay:          time.Minute,
		NEWS2UpdateEvery:    10 * time.Second,
		NEWS2SetWindow:      5 * time.Minute,
	}
}

// condition is the rule of condition, nil if none is (a technical alarm's
// state, or a rule the file removed since).
func (rs *RuleSet) condition(condition string) *ConditionRule {
	for i := range rs.Conditions {
		if rs.Conditions[i].Condition == condition {
			return &rs.Conditions[i]
		}
	}
	return nil
}
