package roles

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/monitorme/monitorme/internal/auth"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/schemas"
)

func TestUsageErrorsExitTwo(t *testing.T) {
	// A rules file with a limit no SpO2 can reach, on line 4.
	badRules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(badRules, []byte("wards:\n  icu:\n    conditions:\n      spo2_low: {limit: 150}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"dev", "--no-such-flag"}, want: "unknown flag"},
		{args: []string{"dev", "--speed", "-1"}, want: "speed"},
		{args: []string{"dev", "--patients", "0"}, want: "patients"},
		{args: []string{"dev", "--broker-addr", "0.0.0.0:9092"}, want: "127.0.0.1 only"},
		{args: []string{"ingest", "--brokers", "nohost"}, want: "not host:port"},
		{args: []string{"ingest", "--producer-compression", "brotli", "--provision=false", "--http-addr", "127.0.0.1:0"}, want: "producer-compression"},
		{args: []string{"process", "--transaction-timeout", "10ms", "--provision=false", "--http-addr", "127.0.0.1:0"}, want: "transaction-timeout"},
		{args: []string{"dev", "--log-level", "loud"}, want: "log-level"},
		{args: []string{"simulate"}, env: map[string]string{"MONITORME_PATIENTS": "many"}, want: "MONITORME_PATIENTS"},
		{args: []string{"dev", "extra"}, want: "unknown command"},
		{args: []string{"bogus"}, want: `unknown command "bogus"`},
		{args: []string{"dev", "--http-addr", "nonsense"}, want: "http-addr"},
		{args: []string{"ingest", "--http-addr", "127.0.0.1:99999"}, want: "http-addr"},
		{args: []string{"simulate", "--target", "notaurl"}, want: "target"},
		{args: []string{"simulate", "--target", "ftp://x:21"}, want: "target"},
		// Settings are checked before any broker is dialed: none listens
		// on port 1, and the answer is still the usage error.
		{args: []string{"ingest", "--brokers", "127.0.0.1:1", "--producer-compression", "brotli"}, want: "producer-compression"},
		{args: []string{"process", "--brokers", "127.0.0.1:1", "--rules", "fuzzy"}, want: "rules"},
		{args: []string{"api", "--brokers", "127.0.0.1:1", "--live-max-alerts", "0"}, want: "live-max"},
		{args: []string{"process", "--brokers", "127.0.0.1:1", "--rules-file", badRules}, want: badRules + ":4: wards.icu.conditions.spo2_low.limit: 150 is outside"},
		{args: []string{"api", "--brokers", "127.0.0.1:1", "--rules-file", badRules}, want: badRules + ":4:"},
		{args: []string{"dev", "--rules-file", "no-such-rules.yaml"}, want: "no-such-rules.yaml"},
		{args: []string{"process", "--brokers", "127.0.0.1:1", "--rules", "threshold", "--rules-file", "x.yaml"}, want: "only the clinical rules"},
		{args: []string{"sink", "--brokers", "127.0.0.1:1"}, want: "clickhouse-addr: required"},
		{args: []string{"sink", "--brokers", "127.0.0.1:1", "--clickhouse-addr", "127.0.0.1:1", "--sink-max-rows", "0"}, want: "max-rows"},
		{args: []string{"migrate"}, want: "clickhouse-addr: required"},
		{args: []string{"migrate", "--clickhouse-addr", "ch"}, want: "not host:port"},
		{args: []string{"migrate", "--clickhouse-addr", "127.0.0.1:1", "--clickhouse-protocol", "grpc"}, want: "clickhouse-protocol"},
		{args: []string{"migrate", "--clickhouse-addr", "127.0.0.1:1", "--clickhouse-database", "x; DROP"}, want: "clickhouse-database"},
		{args: []string{"migrate", "--dry-run", "--vitals-ttl-days", "0"}, want: "vitals-ttl-days"},
		{args: []string{"api", "--brokers", "127.0.0.1:1", "--clickhouse-addr", "127.0.0.1:1", "--clickhouse-ca-file", "ca.pem"}, want: "need --clickhouse-tls"},
		{args: []string{"dev", "--clickhouse-addr", "127.0.0.1:1", "--clickhouse-cert-file", "c.pem", "--clickhouse-tls"}, want: "give both or neither"},
		// The API never runs open by accident.
		{args: []string{"api", "--brokers", "127.0.0.1:1"}, want: "no API authentication configured: give --auth-issuer"},
		{args: []string{"ingest", "--brokers", "127.0.0.1:1"}, want: "or --insecure to serve without"},
		{args: []string{"api", "--brokers", "127.0.0.1:1", "--auth-issuer", "https://idp.example"}, want: "auth-audience: required"},
		{args: []string{"api", "--brokers", "127.0.0.1:1", "--auth-issuer", "https://idp.example", "--auth-audience", "m", "--auth-algorithms", "HS256"}, want: "auth-algorithms"},
		{args: []string{"api", "--brokers", "127.0.0.1:1", "--auth-token-file", "no-such-tokens.yaml"}, want: "no-such-tokens.yaml"},
		{args: []string{"api", "--brokers", "127.0.0.1:1", "--insecure", "--cors-origins", "*"}, want: "cors-origins"},
		{args: []string{"api", "--brokers", "127.0.0.1:1", "--insecure", "--metrics-access", "public"}, want: "metrics-access"},
		{args: []string{"api", "--brokers", "127.0.0.1:1", "--insecure", "--live-max-streams-per-caller", "0"}, want: "live-max-streams"},
		{args: []string{"dev", "--insecure", "--auth-token-file", "t.yaml"}, want: "cannot be combined"},
		{args: []string{"token", "create", "--subject", "s", "--role", "clinician"}, want: "--file tokens.yaml"},
		{args: []string{"token", "create", "--file", filepath.Join(t.TempDir(), "t.yaml"), "--subject", "s", "--role", "root"}, want: `role "root"`},
		{args: []string{"token", "create", "--file", filepath.Join(t.TempDir(), "t.yaml"), "--subject", "has space", "--role", "admin"}, want: "without spaces"},
		{args: []string{"simulate", "--token-file", "no-such-token"}, want: "token-file"},
		{args: []string{"tail"}, want: "tail takes one topic"},
		{args: []string{"tail", "vitals", "-o", "latest"}, want: "want start, end"},
		{args: []string{"tail", "vitals", "-o", "@-20m:-50m"}, want: "ends before it starts"},
		{args: []string{"tail", "vitals", "--format", "yaml"}, want: "format"},
		{args: []string{"tail", "vitals", "-n", "-1"}, want: "num"},
		{args: []string{"tail", "vitals", "--source", "db"}, want: "source"},
		{args: []string{"tail", "vitals", "--kind", "pulse"}, want: `kind: "pulse" is not a vital`},
		{args: []string{"tail", "vitals", "--priority", "high"}, want: "only alert events have one"},
		{args: []string{"tail", "alerts", "--priority", "urgent"}, want: "priority"},
		{args: []string{"tail", "alerts", "--state", "open"}, want: "state"},
		{args: []string{"tail", "acks", "--kind", "spo2"}, want: "never match"},
		{args: []string{"tail", "vitals", "--source", "clickhouse"}, want: "needs --clickhouse-addr, --patient, a time range"},
		{args: []string{"replay"}, want: "from and to: both required"},
		{args: []string{"replay", "--from", "-2h", "--to", "-3h"}, want: "to: must be after --from"},
		{args: []string{"replay", "--from", "-2h", "--to", "now", "--fail-on-diff"}, want: "needs --diff"},
		{args: []string{"replay", "--from", "-2h", "--to", "now", "--to-topic", "alerts.v1"}, want: "live alerts topic"},
		{args: []string{"replay", "--from", "-2h", "--to", "now", "--format", "html"}, want: "format"},
		{args: []string{"replay", "--from", "-2h", "--to", "now", "--rules-file", badRules}, want: badRules + ":4:"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), tt.args, &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 naming %q", code, stderr.String(), tt.want)
			}
		})
	}
}

var ingestLine = regexp.MustCompile(`POST (http://\S+)/v1/vitals`)

// startDev runs `monitorme dev` in-process and returns its base URL and a
// stop function that returns the exit code.
func startDev(t *testing.T, args ...string) (string, func() int) {
	base, stop, _ := startDevOut(t, args...)
	return base, stop
}

// startDevOut is startDev that also returns what dev printed.
func startDevOut(t *testing.T, args ...string) (string, func() int, *testkit.SyncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &testkit.SyncBuffer{}
	errOut := &testkit.SyncBuffer{}
	code := make(chan int, 1)
	go func() {
		code <- Run(ctx, append([]string{"dev", "--broker-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "error"}, args...), out, errOut)
	}()
	var base string
	testkit.Eventually(t, 20*time.Second, "dev prints where it listens", func() bool {
		m := ingestLine.FindStringSubmatch(out.String())
		if m != nil {
			base = m[1]
		}
		select {
		case c := <-code:
			t.Fatalf("dev exited %d early: %s %s", c, out.String(), errOut.String())
		default:
		}
		return m != nil
	})
	if m := tokenLine.FindStringSubmatch(out.String()); m != nil {
		devTokens.Store(base, m[1])
	} else if !slices.Contains(args, "--insecure") {
		t.Errorf("dev printed no API token:\n%s", out.String())
	}
	// The banner says when alarms are live, and then /readyz agrees.
	testkit.Eventually(t, 60*time.Second, "dev says alarms are live", func() bool {
		return strings.Contains(out.String(), "Alarms are live.")
	})
	if resp, err := http.Get(base + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("dev said alarms are live, /readyz answers %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if !slices.Contains(args, "--clickhouse-addr") && !strings.Contains(out.String(), "history      off: no ClickHouse configured (--clickhouse-addr)") {
		t.Errorf("dev without ClickHouse does not say history is off:\n%s", out.String())
	}
	var once sync.Once
	exit := -1
	stop := func() int {
		once.Do(func() {
			cancel()
			select {
			case exit = <-code:
			case <-time.After(30 * time.Second):
				t.Error("dev did not stop within 30s")
			}
			if !strings.Contains(out.String(), "MonitorMe dev stopped.") {
				t.Errorf("no clean stop message: %s", out.String())
			}
		})
		return exit
	}
	t.Cleanup(func() { stop() })
	return base, stop, out
}

// tokenLine is where dev prints its admin token.
var tokenLine = regexp.MustCompile(`(?m)^  API token    (mm_\S+)$`)

// devTokens are the admin tokens of the dev servers started, by base URL.
var devTokens sync.Map

// authed sends req with the admin token of the dev server it goes to.
func authed(req *http.Request) (*http.Response, error) {
	base := req.URL.Scheme + "://" + req.URL.Host
	if tok, ok := devTokens.Load(base); ok && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+tok.(string))
	}
	return http.DefaultClient.Do(req)
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	resp, err := authed(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(v)
	return resp.StatusCode
}

type alertsBody struct{ Alerts []schemas.Alert }

// A new user's first minute: patients, latest vitals, an alert, a clean
// stop with exit 0, and a restart on the same data dir that still has
// every alert.
func TestDevEndToEndAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole platform")
	}
	dir := t.TempDir()
	base, stop := startDev(t, "--data-dir", dir, "--speed", "5")

	var patients struct {
		Patients []struct {
			PatientID string `json:"patient_id"`
		}
	}
	testkit.Eventually(t, 20*time.Second, "20 patients listed", func() bool {
		return getJSON(t, base+"/v1/patients", &patients) == 200 && len(patients.Patients) == 20
	})
	var latest struct{ Vitals map[string]schemas.Reading }
	// Every vital of P001 once the simulator's first round reached the
	// view (a loaded machine lists the patients before that).
	if !testkit.Poll(20*time.Second, 100*time.Millisecond, func() bool {
		return getJSON(t, base+"/v1/patients/P001/vitals/latest", &latest) == 200 && len(latest.Vitals) == len(schemas.Specs)
	}) {
		t.Fatalf("latest vitals of P001: %v", latest.Vitals)
	}
	var before alertsBody
	testkit.Eventually(t, 30*time.Second, "an alert raised", func() bool {
		return getJSON(t, base+"/v1/alerts?limit=1000", &before) == 200 && len(before.Alerts) > 0
	})
	// Without the printed token nothing of the API answers; with it, the
	// README's curl line does.
	if resp, err := http.Get(base + "/v1/patients"); err != nil || resp.StatusCode != 401 {
		t.Fatalf("no token: %v %v", resp, err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/vitals", strings.NewReader(`[{"patient_id":"P001","kind":"pulse"}]`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := authed(req)
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("bad request: %v %v", resp, err)
	}
	resp.Body.Close()
	var problem struct{ Detail string }
	if code := getJSON(t, base+"/v1/patients/P001/vitals?step=5m", &problem); code != 501 || !strings.Contains(problem.Detail, "--clickhouse-addr") {
		t.Fatalf("history without ClickHouse: %d %q", code, problem.Detail)
	}
	var ready map[string]string
	if code := getJSON(t, base+"/readyz", &ready); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	mresp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !regexp.MustCompile(`monitorme_build_info\{[^}]*service="monitorme-dev"[^}]*\} 1`).Match(metrics) {
		t.Fatalf("no build_info in /metrics:\n%.2000s", metrics)
	}
	for _, want := range []string{`monitorme_consumer_group_lag{group="alerting",partition="0",topic="vitals.v1"}`, `monitorme_consumer_group_lag_up{group="alerting"} 1`,
		`monitorme_processor_alert_latency_seconds_bucket`} {
		if !strings.Contains(string(metrics), want) {
			t.Fatalf("no %s in /metrics:\n%.3000s", want, metrics)
		}
	}
	if code := stop(); code != 0 {
		t.Fatalf("dev exited %d on shutdown", code)
	}

	base, _ = startDev(t, "--data-dir", dir, "--no-simulator")
	// Ready means the live view has read what the topics held: the first
	// answer after /readyz says 200 already has every alert (before, it
	// had none for a second or so).
	testkit.Eventually(t, 20*time.Second, "ready after restart", func() bool {
		return getJSON(t, base+"/readyz", &ready) == 200
	})
	var after alertsBody
	if code := getJSON(t, base+"/v1/alerts?limit=1000", &after); code != 200 || len(after.Alerts) < len(before.Alerts) {
		t.Fatalf("ready, yet /v1/alerts answers %d with %d of the %d alerts", code, len(after.Alerts), len(before.Alerts))
	}
	have := map[string]bool{}
	for _, a := range after.Alerts {
		have[a.AlertID] = true
	}
	for _, a := range before.Alerts {
		if !have[a.AlertID] {
			t.Fatalf("alert %s seen before the restart is gone after it", a.AlertID)
		}
	}
}

func TestMigrateDryRunRendersTheSchema(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Run(context.Background(), []string{"migrate", "--dry-run", "--vitals-ttl-days", "7"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"-- schema version 1: history", "CREATE TABLE IF NOT EXISTS vitals", "INTERVAL 7 DAY DELETE", "CREATE MATERIALIZED VIEW IF NOT EXISTS vitals_1m_mv"} {
		if !strings.Contains(out, want) {
			t.Fatalf("dry run lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "${") {
		t.Fatalf("placeholder left unrendered:\n%s", out)
	}
}

// A bad setting is refused before anything is created: no data dir.
func TestBadSettingsCreateNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	var stdout, stderr bytes.Buffer
	if code := Run(context.Background(), []string{"dev", "--data-dir", dir, "--http-addr", "nonsense"}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the data dir was created: %v", err)
	}
}

// A taken broker port names the flag that moves it.
func TestTakenBrokerPortNamesTheFlag(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"dev", "--data-dir", t.TempDir(), "--broker-addr", ln.Addr().String(), "--http-addr", "127.0.0.1:0"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "--broker-addr") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var stdout, stderr bytes.Buffer
		if code := Run(context.Background(), args, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "monitorme ") || !strings.Contains(stdout.String(), "go1.") {
			t.Fatalf("%v: exit %d, %q %q", args, code, stdout.String(), stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	var v struct {
		Version   string `json:"version"`
		GoVersion string `json:"go_version"`
	}
	if code := Run(context.Background(), []string{"version", "--json"}, &stdout, &stderr); code != 0 || json.Unmarshal(stdout.Bytes(), &v) != nil || v.Version == "" || v.GoVersion == "" {
		t.Fatalf("--json: exit %d, %q", code, stdout.String())
	}
}

// A fresh dev with nothing to read is ready at once.
func TestDevReadyWithNothingToRead(t *testing.T) {
	base, _ := startDev(t, "--data-dir", t.TempDir(), "--no-simulator")
	var ready map[string]string
	testkit.Eventually(t, 15*time.Second, "ready with empty topics", func() bool {
		return getJSON(t, base+"/readyz", &ready) == 200
	})
}

// token create prints a token once and stores only its hash; a server
// given the file takes the token.
func TestTokenCreate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens.yaml")
	var stdout, stderr bytes.Buffer
	if code := Run(context.Background(), []string{"token", "create", "--file", file, "--subject", "gw-icu", "--role", "device", "--device", "mon-1"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	tok := strings.TrimSpace(stdout.String())
	b, _ := os.ReadFile(file)
	if !strings.HasPrefix(tok, auth.TokenPrefix) || strings.Contains(string(b), tok) || !strings.Contains(string(b), auth.Hash(tok)) {
		t.Fatalf("token %q, file:\n%s", tok, b)
	}
	got, err := auth.ReadTokenFile(file)
	if p := got[auth.Hash(tok)]; err != nil || p.Subject != "gw-icu" || !slices.Equal(p.Devices, []string{"mon-1"}) {
		t.Fatalf("read back: %+v %v", got, err)
	}
}

// dev --insecure says loudly that the API is open, and it is.
func TestDevInsecureSaysSo(t *testing.T) {
	base, _, out := startDevOut(t, "--data-dir", t.TempDir(), "--no-simulator", "--insecure")
	if !strings.Contains(out.String(), "!!! INSECURE") || strings.Contains(out.String(), "API token") {
		t.Fatalf("dev --insecure printed:\n%s", out.String())
	}
	var ready map[string]string
	testkit.Eventually(t, 20*time.Second, "ready", func() bool { return getJSON(t, base+"/readyz", &ready) == 200 })
	resp, err := http.Get(base + "/v1/patients")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("insecure dev without a token: %v %v", resp, err)
	}
	resp.Body.Close()
}

// The simulated ward as a newcomer tries it: `monitorme dev` places its
// patients in ward "demo"; every alert event of a placed patient says the
// ward and bed, and GET /v1/alarms?ward=demo lists the ward's open alarms,
// each at the bed GET /v1/wards gives. Before, the alarms said ward "" and
// ?ward=demo listed none.
func TestDevAlarmsCarryTheSimulatedWard(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole platform")
	}
	base, _ := startDev(t, "--data-dir", t.TempDir(), "--speed", "5")
	var wards struct {
		Wards []struct {
			Ward string
			Beds []struct {
				Bed       string
				PatientID string `json:"patient_id"`
			}
		}
	}
	bed := map[string]string{}
	testkit.Eventually(t, 30*time.Second, "ward demo with 20 beds", func() bool {
		if getJSON(t, base+"/v1/wards", &wards) != 200 || len(wards.Wards) != 1 || wards.Wards[0].Ward != "demo" || len(wards.Wards[0].Beds) != 20 {
			return false
		}
		for _, b := range wards.Wards[0].Beds {
			bed[b.PatientID] = b.Bed
		}
		return true
	})
	var open struct {
		Alarms []struct {
			AlertID   string `json:"alert_id"`
			PatientID string `json:"patient_id"`
			Ward, Bed string
		}
	}
	testkit.Eventually(t, 60*time.Second, "an open alarm in ward demo", func() bool {
		return getJSON(t, base+"/v1/alarms?ward=demo", &open) == 200 && len(open.Alarms) > 0
	})
	for _, a := range open.Alarms {
		if a.Ward != "demo" || a.Bed != bed[a.PatientID] {
			t.Errorf("open alarm %s of %s: ward %q bed %q, want demo, %q", a.AlertID, a.PatientID, a.Ward, a.Bed, bed[a.PatientID])
		}
	}
	var events alertsBody
	if code := getJSON(t, base+"/v1/alerts?limit=1000", &events); code != 200 {
		t.Fatalf("alerts: %d", code)
	}
	var inWard alertsBody
	getJSON(t, base+"/v1/alerts?limit=1000&ward=demo", &inWard)
	if len(inWard.Alerts) != len(events.Alerts) {
		t.Errorf("?ward=demo gave %d of the ward's %d alert events", len(inWard.Alerts), len(events.Alerts))
	}
	for _, a := range events.Alerts {
		if a.Ward != "demo" || a.Bed != bed[a.PatientID] {
			t.Errorf("alert event %s %s of %s: ward %q bed %q, want demo, %q", a.AlertID, a.State, a.PatientID, a.Ward, a.Bed, bed[a.PatientID])
		}
	}

	// An ADT transfer through the API moves the open alarm: the processor
	// writes an updated event in the new ward and bed, with no further
	// reading needed, and the ward lists follow. The patient is one of the
	// test's own, admitted to bed 21 with a critical SpO2 (a high alarm,
	// latched until acknowledged: open whatever the simulator does).
	post := func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := authed(req)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	post("/v1/patients/T001/placement", `{"event":"admit","ward":"demo","bed":"21"}`)
	testkit.Eventually(t, 20*time.Second, "T001 in bed 21", func() bool {
		return getJSON(t, base+"/v1/wards", &wards) == 200 && len(wards.Wards[0].Beds) == 21
	})
	post("/v1/vitals", `[{"patient_id":"T001","device_id":"T001-ox","kind":"spo2","value":65,"unit":"%","ts":"`+time.Now().UTC().Format(time.RFC3339Nano)+`","seq":1}]`)
	var moved struct {
		AlertID   string `json:"alert_id"`
		PatientID string `json:"patient_id"`
		Ward, Bed string
	}
	testkit.Eventually(t, 20*time.Second, "T001's critical alarm in demo bed 21", func() bool {
		var o struct{ Alarms []json.RawMessage }
		getJSON(t, base+"/v1/alarms?ward=demo&patient=T001", &o)
		return len(o.Alarms) == 1 && json.Unmarshal(o.Alarms[0], &moved) == nil && moved.Bed == "21"
	})
	post("/v1/patients/T001/placement", `{"event":"transfer","ward":"icu","bed":"7"}`)
	testkit.Eventually(t, 20*time.Second, "the processor moved the alarm to icu bed 7", func() bool {
		var icu alertsBody
		if getJSON(t, base+"/v1/alerts?limit=1000&ward=icu", &icu) != 200 {
			return false
		}
		for _, a := range icu.Alerts {
			if a.AlertID == moved.AlertID && a.Updated && a.Bed == "7" {
				return true
			}
		}
		return false
	})
	var after struct {
		Alarms []struct {
			AlertID   string `json:"alert_id"`
			Ward, Bed string
		}
	}
	getJSON(t, base+"/v1/alarms?ward=demo", &after)
	for _, a := range after.Alarms {
		if a.AlertID == moved.AlertID {
			t.Errorf("ward demo still lists the alarm of a patient moved to icu: %+v", a)
		}
	}
}

// An export of a range before the Unix epoch, on a server without
// ClickHouse: the topics hold everything since they began, so the range
// is empty, a 200. Before (issue 26), to=1322-... asked the broker for
// offsets at a negative time and answered 503 "the history store
// (ClickHouse) did not answer; try again shortly".
func TestDevExportOfAnAncientRangeIsEmpty(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole platform")
	}
	base, _ := startDev(t, "--data-dir", t.TempDir(), "--no-simulator")
	testkit.Eventually(t, 20*time.Second, "ready", func() bool { return getJSON(t, base+"/readyz", &map[string]string{}) == 200 })
	var bundle struct {
		ResourceType string `json:"resourceType"`
		Entry        []any  `json:"entry"`
	}
	if code := getJSON(t, base+"/v1/patients/x/export?to=1322-10-05T09:20:31.322Z", &bundle); code != 200 || bundle.ResourceType != "Bundle" || len(bundle.Entry) != 1 {
		t.Fatalf("export of 1322: %d %+v (want 200, a Bundle with the Patient alone)", code, bundle)
	}
}

// --memory-limit sets the soft memory limit ingest sheds load by, unless
// GOMEMLIMIT set one; a limit too small to run in is refused.
func TestDevMemoryLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	t.Setenv("GOMEMLIMIT", "")
	if err := applyMemoryLimit("512MiB"); err != nil || debug.SetMemoryLimit(-1) != 512<<20 {
		t.Fatalf("512MiB: %v, limit %d", err, debug.SetMemoryLimit(-1))
	}
	if err := applyMemoryLimit("10MiB"); err == nil {
		t.Fatal("10MiB accepted")
	}
	if err := applyMemoryLimit("lots"); err == nil {
		t.Fatal("lots accepted")
	}
	t.Setenv("GOMEMLIMIT", "2GiB")
	if err := applyMemoryLimit("256MiB"); err != nil || debug.SetMemoryLimit(-1) != 512<<20 {
		t.Fatalf("with GOMEMLIMIT set: %v, limit %d", err, debug.SetMemoryLimit(-1))
	}
}
