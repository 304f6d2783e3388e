package clinical

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

func rule(rs *RuleSet, cond string) *ConditionRule {
	for i := range rs.Conditions {
		if rs.Conditions[i].Condition == cond {
			return &rs.Conditions[i]
		}
	}
	return nil
}

// The example the docs point at loads, and its layers apply in order:
// defaults, ward, patient.
func TestRulesFileExample(t *testing.T) {
	cfg := loadRulesFile(t, "../config/rules.example.yaml")
	def := cfg.For("P999")
	if def != &cfg.Default || def.Ward != "" || rule(def, "heart_rate_high").Limit != 120 || firstTier(def, schemas.High) != time.Minute {
		t.Fatalf("defaults: %+v", def)
	}
	icu := cfg.For("P001")
	if icu.Ward != "icu" || rule(icu, "heart_rate_high").Limit != 130 || rule(icu, "heart_rate_high").Delay != 20*time.Second ||
		rule(icu, "heart_rate_high").Priority != schemas.Medium || firstTier(icu, schemas.High) != 30*time.Second || firstTier(icu, schemas.Medium) != 5*time.Minute {
		t.Fatalf("icu: %+v", icu)
	}
	if sl := icu.SignalLost[0]; sl.Kind != schemas.HeartRate || sl.After != 5*time.Second || sl.Priority != schemas.High {
		t.Fatalf("icu signal lost: %+v", icu.SignalLost)
	}
	if p := cfg.For("P002"); !p.Hypercapnic || rule(p, "spo2_low").Limit != 86 || rule(p, "spo2_low").Delay != 15*time.Second {
		t.Fatalf("P002: %+v", p)
	}
	if p := cfg.For("P003"); p.Hypercapnic || p.Ward != "respiratory" || rule(p, "spo2_low").Limit != 90 || rule(p, "spo2_critical").Limit != 78 {
		t.Fatalf("P003: %+v", p)
	}
	p4 := cfg.For("P004")
	if b := rule(p4, "bradycardia_watch"); b == nil || !b.Below || b.Limit != 45 || b.Delay != 30*time.Second || rule(p4, "glucose_high") != nil {
		t.Fatalf("P004: %+v", p4)
	}
	// Layers copy: a ward's change is not the default's.
	if rule(&cfg.Default, "spo2_low").Limit != 90 || rule(&cfg.Default, "glucose_high") == nil {
		t.Fatal("a layer changed the defaults")
	}
	if cfg.NEWS2MaxAge != 90*time.Minute || cfg.NEWS2ResolveAfter != 5*time.Minute {
		t.Fatalf("news2: %v %v", cfg.NEWS2MaxAge, cfg.NEWS2ResolveAfter)
	}
}

// Every mistake is refused with the file, the line and the reason.
func TestRulesFileErrorsNameTheLine(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"unknown field", "defaults:\n  escalaton:\n    high: 60s\n", "line 2: field escalaton not found"},
		{"bad duration", "defaults:\n  escalation:\n    high: soon\n", `line 3: "soon" is not a duration`},
		{"bad priority key", "defaults:\n  escalation:\n    urgent: 60s\n", `r.yaml:3: defaults.escalation: "urgent" is not a priority`},
		{"limit out of range", "wards:\n  icu:\n    conditions:\n      spo2_low: {limit: 150}\n", "r.yaml:4: wards.icu.conditions.spo2_low.limit: 150 is outside spo2's possible range [0, 100] %"},
		{"new condition incomplete", "patients:\n  P1:\n    conditions:\n      mine: {limit: 40}\n", "r.yaml:4: patients.P1.conditions.mine: a new condition needs kind, below, limit and priority"},
		{"unknown kind", "patients:\n  P1:\n    conditions:\n      mine: {kind: pulse, below: true, limit: 40, priority: high}\n", `r.yaml:4: patients.P1.conditions.mine.kind: "pulse" is not a vital kind`},
		{"unknown ward", "patients:\n  P1:\n    ward: icu\n", `r.yaml:3: patients.P1.ward: "icu" is not under wards`},
		{"bad patient id", "patients:\n  \"P 1\":\n    hypercapnic: true\n", `r.yaml:3: patients: "P 1" may contain only`},
		{"signal lost kind", "defaults:\n  signal_lost:\n    pulse: {after: 10s}\n", `r.yaml:3: defaults.signal_lost.pulse: "pulse" is not a vital kind`},
		{"signal lost too short", "defaults:\n  signal_lost:\n    spo2: {after: 100ms}\n", "r.yaml:3: defaults.signal_lost.spo2.after: 100ms, want at least 1s"},
		{"wrong type", "defaults:\n  news2: maybe\n", "line 2: cannot unmarshal !!str `maybe` into bool"},
		{"disable unknown", "defaults:\n  conditions:\n    nope: {disabled: true}\n", "r.yaml:3: defaults.conditions.nope: disabled, but there is no such condition"},
		{"not yaml", "defaults: [\n", "line 1: did not find expected node content"},
		{"unknown condition field", "defaults:\n  conditions:\n    spo2_low: {limt: 88}\n", "line 3: field limt not found"},
	} {
		_, err := LoadRules("r.yaml", strings.NewReader(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "r.yaml") {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

func TestRulesFileEmptyIsDefaults(t *testing.T) {
	cfg, err := LoadRules("empty.yaml", strings.NewReader("# nothing\n"))
	if err != nil || len(cfg.Default.Conditions) != len(DefaultConfig().Default.Conditions) {
		t.Fatalf("%v %+v", err, cfg.Default)
	}
}

// loadRulesFile parses a rules file as the processor does (it reads the
// file once, processors.ReadRulesFile).
func loadRulesFile(t *testing.T, path string) Config {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := LoadRules(path, f)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Alert events carry the patient's ward from the rules file, so history
// can report the alarm burden per ward.
func TestAlertsCarryTheWard(t *testing.T) {
	cfg := loadRulesFile(t, "../config/rules.example.yaml")
	eng := NewEngine(cfg)
	for patient, want := range map[string]string{"P003": "respiratory", "P999": ""} {
		if got, _ := eng.Where(patient, nil); got != want {
			t.Errorf("%s: ward %q, want %q", patient, got, want)
		}
	}
}

func firstTier(rs *RuleSet, p schemas.Priority) time.Duration {
	if len(rs.Escalation[p]) == 0 {
		return 0
	}
	return rs.Escalation[p][0].After
}
