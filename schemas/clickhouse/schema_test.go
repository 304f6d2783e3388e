package clickhouse

import (
	"strings"
	"testing"
)

func TestMigrationsRender(t *testing.T) {
	ms, err := Migrations(DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != Latest() || ms[0].Version != 1 {
		t.Fatalf("%d migrations, latest %d", len(ms), Latest())
	}
	want := map[string]bool{"vitals": false, "alerts": false, "acknowledgements": false, "vitals_1m": false, "vitals_1m_mv": false}
	for _, st := range ms[0].Statements {
		if strings.Contains(st, "${") || strings.HasPrefix(st, "--") {
			t.Errorf("unrendered statement:\n%s", st)
		}
		if !strings.Contains(st, "IF NOT EXISTS") {
			t.Errorf("not idempotent:\n%s", st)
		}
		for name := range want {
			if strings.Contains(st, "EXISTS "+name+"\n") || strings.Contains(st, "EXISTS "+name+" ") {
				want[name] = true
			}
		}
	}
	for name, ok := range want {
		if !ok {
			t.Errorf("no CREATE for %s", name)
		}
	}
	s := DefaultSettings()
	s.VitalsTTLDays = 7
	ms, _ = Migrations(s)
	if !strings.Contains(ms[0].Statements[0], "INTERVAL 7 DAY") {
		t.Errorf("vitals TTL not rendered:\n%s", ms[0].Statements[0])
	}
}

func TestSettingsAndPlaceholders(t *testing.T) {
	s := DefaultSettings()
	s.RollupTTLDays = 0
	if _, err := Migrations(s); err == nil || !strings.Contains(err.Error(), "rollup-ttl-days: 0") {
		t.Errorf("err %v", err)
	}
	if _, err := statements("SELECT ${nope};\n", DefaultSettings().values()); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown placeholder: err %v", err)
	}
}

func TestCheckServer(t *testing.T) {
	for v, ok := range map[string]bool{"24.8.1.2684": true, "25.3": true, "26.9.2.1": true, "24.3.5": false, "18.16.1": false, "x.y": false, "": false} {
		if err := CheckServer(v); (err == nil) != ok {
			t.Errorf("%q: err %v", v, err)
		}
	}
	if err := CheckServer("23.8.1"); err == nil || !strings.Contains(err.Error(), "23.8.1") || !strings.Contains(err.Error(), "24.8") {
		t.Errorf("the error names neither version: %v", err)
	}
}
