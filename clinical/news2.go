package clinical

import (
	"math"

	"github.com/monitorme/monitorme/schemas"
)

// NEWS2 inputs and scoring follow the Royal College of Physicians' National
// Early Warning Score 2 chart (2017). A parameter with no recent value is
// missing: it scores nothing, and the score says which are missing. The
// engine alarms on NEWS2 only when the parameters the rules require
// (Config.NEWS2Require, all seven by default) are present: the
// score is meant for a complete, current observation set, and scored on
// one parameter a single artefact raised it.

// NEWS2Input holds the latest value of each parameter; nil is missing.
type NEWS2Input struct {
	RespRate      *float64 // per minute
	SpO2          *float64 // %
	OnOxygen      *bool    // supplemental oxygen
	SystolicBP    *float64 // mm[Hg]
	Pulse         *float64 // per minute
	Consciousness *int     // ACVPU: 0 Alert, 1–4 new Confusion, Voice, Pain, Unresponsive
	Temperature   *float64 // Cel
	// Hypercapnic patients (target SpO2 88–92 %, e.g. in COPD with
	// hypercapnic respiratory failure) are scored on SpO2 scale 2.
	Hypercapnic bool
}

// NEWS2 bands.
const (
	BandLow       = "low"
	BandLowMedium = "low-medium"
	BandMedium    = "medium"
	BandHigh      = "high"
)

// NEWS2Score is a scored input.
type NEWS2Score struct {
	Total      int            `json:"score"`
	Components map[string]int `json:"components"`
	Missing    []string       `json:"missing,omitempty"`
	// Band is the clinical risk: high (7+), medium (5–6), low-medium (a
	// single parameter scoring 3), else low.
	Band string `json:"band"`
}

// Priority maps the band to an alarm priority; low raises no alarm. A
// single parameter scoring 3 (low-medium) is medium, as 5–6 is: RCP asks
// an urgent ward-based response for both, so both escalate alike.
func (s NEWS2Score) Priority() (schemas.Priority, bool) {
	switch s.Band {
	case BandHigh:
		return schemas.High, true
	case BandMedium, BandLowMedium:
		return schemas.Medium, true
	}
	return "", false
}

// Response is RCP's clinical response to the band.
func (s NEWS2Score) Response() string {
	switch s.Band {
	case BandHigh:
		return "emergency response"
	case BandMedium:
		return "urgent response"
	case BandLowMedium:
		return "urgent ward-based response"
	}
	return "ward-based response"
}

// ScoreNEWS2 scores in.
func ScoreNEWS2(in NEWS2Input) NEWS2Score { return scoreNEWS2(in, true) }

// scoreNEWS2 without detail leaves Components and Missing nil: the engine
// scores every NEWS2 reading but needs the detail only for an alert, and
// the map was most of the scoring's cost.
func scoreNEWS2(in NEWS2Input, detail bool) NEWS2Score {
	var s NEWS2Score
	if detail {
		s.Components = make(map[string]int, 7)
	}
	red := false
	add := func(name string, points int) {
		if detail {
			s.Components[name] = points
		}
		s.Total += points
		if points == 3 {
			red = true
		}
	}
	score := func(name string, v *float64, f func(float64) int) {
		if v == nil {
			if detail {
				s.Missing = append(s.Missing, name)
			}
			return
		}
		add(name, f(*v))
	}
	score("resp_rate", in.RespRate, respRatePoints)
	switch {
	case in.SpO2 == nil:
		if detail {
			s.Missing = append(s.Missing, "spo2")
		}
	case in.Hypercapnic:
		// Scale 2 scores high saturations only on oxygen; without
		// knowing the oxygen, score as on air (the lower bound).
		add("spo2", spo2Scale2Points(*in.SpO2, in.OnOxygen != nil && *in.OnOxygen))
	default:
		add("spo2", spo2Scale1Points(*in.SpO2))
	}
	if in.OnOxygen == nil {
		if detail {
			s.Missing = append(s.Missing, "o2_supplement")
		}
	} else if *in.OnOxygen {
		add("o2_supplement", 2)
	} else {
		add("o2_supplement", 0)
	}
	score("bp_systolic", in.SystolicBP, systolicPoints)
	score("heart_rate", in.Pulse, pulsePoints)
	if in.Consciousness == nil {
		if detail {
			s.Missing = append(s.Missing, "consciousness")
		}
	} else if *in.Consciousness > 0 {
		add("consciousness", 3)
	} else {
		add("consciousness", 0)
	}
	score("temperature", in.Temperature, temperaturePoints)
	switch {
	case s.Total >= 7:
		s.Band = BandHigh
	case s.Total >= 5:
		s.Band = BandMedium
	case red:
		s.Band = BandLowMedium
	default:
		s.Band = BandLow
	}
	return s
}

// The chart is in whole numbers (temperature in tenths of a degree), and a
// value is rounded to that precision before it is banded: on the raw value
// SpO2 91.4 % scored 2 where the chart, which reads it as 91, gives 3 (and
// likewise 35.04 °C, a pulse of 40.4, a respiration of 8.4, a systolic
// 90.4). Halves round up.
func whole(v float64) float64 { return math.Floor(v + 0.5) }

// tenths rounds to 0.1; the nudge keeps 35.05, stored as 35.04999…, a half.
func tenths(v float64) float64 { return math.Floor(v*10+0.5+1e-9) / 10 }

// Each chart row is a list of upper bounds, inclusive, with the points
// for values up to that bound; values above the last bound score last.
type band struct {
	upTo   float64
	points int
}

func points(v float64, bands []band, above int) int {
	for _, b := range bands {
		if v <= b.upTo {
			return b.points
		}
	}
	return above
}

func respRatePoints(v float64) int {
	return points(whole(v), []band{{8, 3}, {11, 1}, {20, 0}, {24, 2}}, 3)
}

func spo2Scale1Points(v float64) int {
	return points(whole(v), []band{{91, 3}, {93, 2}, {95, 1}}, 0)
}

func spo2Scale2Points(v float64, onOxygen bool) int {
	v = whole(v)
	if v <= 92 || !onOxygen {
		return points(v, []band{{83, 3}, {85, 2}, {87, 1}}, 0)
	}
	return points(v, []band{{94, 1}, {96, 2}}, 3)
}

func systolicPoints(v float64) int {
	return points(whole(v), []band{{90, 3}, {100, 2}, {110, 1}, {219, 0}}, 3)
}

func pulsePoints(v float64) int {
	return points(whole(v), []band{{40, 3}, {50, 1}, {90, 0}, {110, 1}, {130, 2}}, 3)
}

func temperaturePoints(v float64) int {
	return points(tenths(v), []band{{35.0, 3}, {36.0, 1}, {38.0, 0}, {39.0, 1}}, 2)
}
