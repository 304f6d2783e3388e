package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/monitorme/monitorme/internal/auth"
	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/schemas"
)

var (
	enabled = os.Getenv("MONITORME_E2E") != ""
	bin     string   // the monitorme binary under test
	brokers []string // the Apache Kafka cluster
	logDir  string   // process logs, kept for a failed run
)

func TestMain(m *testing.M) {
	if !enabled {
		os.Exit(m.Run()) // every test skips itself
	}
	code := 1
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
	} else {
		code = m.Run()
		printSummary(code)
	}
	if err := script("down"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e teardown:", err)
	}
	os.Exit(code)
}

// apiTokens is the token file the API roles are started with, and
// deviceToken the token post sends.
var apiTokens, deviceToken string

// authFlags are the flags that give an API role the suite's tokens.
func authFlags() []string { return []string{"--auth-token-file", apiTokens} }

func setup() error {
	logDir = filepath.Join(".out", "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	// The API roles run with authentication, as a hospital runs them:
	// a static token file with the device token the suite posts with.
	apiTokens, _ = filepath.Abs(filepath.Join(".out", "tokens.yaml"))
	os.Remove(apiTokens)
	deviceToken = auth.NewToken()
	if err := auth.AppendToken(apiTokens, auth.TokenEntry{Subject: "e2e-gateway", Roles: []string{"device"}, SHA256: auth.Hash(deviceToken)}); err != nil {
		return err
	}
	bin, _ = filepath.Abs(filepath.Join(".out", "monitorme"))
	build := exec.Command("go", "build", "-o", bin, "../cmd/monitorme")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build monitorme: %w", err)
	}
	up := []string{"up", "3"}
	if secure {
		up = append(up, "--secure")
	}
	if err := script(up...); err != nil {
		return err
	}
	out, err := exec.Command("./kafka.sh", "brokers").Output()
	if err != nil {
		return err
	}
	brokers = strings.Split(strings.TrimSpace(string(out)), ",")
	// A node that says it started may not be registered with the
	// controller yet; topics created before it is would get fewer replicas.
	// Each try uses a new client: a client's cached broker list is not
	// refreshed by metadata requests that name no topic.
	var n int
	if !testkit.Poll(60*time.Second, 200*time.Millisecond, func() bool {
		n, err = liveBrokers()
		return err == nil && n == 3
	}) {
		return fmt.Errorf("cluster shows %d of 3 brokers after 60s (%v)", n, err)
	}
	return nil
}

func liveBrokers() (int, error) {
	cl, err := kgo.NewClient(with(kgo.SeedBrokers(brokers...))...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return kafka.LiveBrokers(ctx, kadm.NewClient(cl))
}

// secure runs the suite on the secured cluster (make e2e-secure):
// SASL_SSL, SCRAM users made at format time, the StandardAuthorizer.
var secure = os.Getenv("MONITORME_E2E_SECURE") != ""

// runDir is where kafka.sh keeps a secured cluster's CA and passwords.
var runDir, _ = filepath.Abs(".run")

// plaintextOnly skips a case the secured run leaves to `make e2e`.
func plaintextOnly(t *testing.T) {
	t.Helper()
	if secure {
		t.Skip("runs on the plaintext cluster (make e2e)")
	}
}

// secureOnly skips a case only the secured cluster can run.
func secureOnly(t *testing.T) {
	t.Helper()
	if !secure {
		t.Skip("runs on the secured cluster (make e2e-secure)")
	}
}

// password is the file holding user's password on the secured cluster.
func password(user string) string { return filepath.Join(runDir, "secrets", user+".pw") }

// kafkaFlags are the flags that make a role reach the cluster as user:
// none on the plaintext cluster; on the secured one TLS with the suite's
// CA and SCRAM with user's password file, and no provisioning (the
// topics are the admin's to create, as least privilege has it).
func kafkaFlags(user string) []string {
	if !secure {
		return nil
	}
	return []string{"--tls-enabled", "--tls-truststore", filepath.Join(runDir, "tls", "ca.pem"),
		"--sasl-mechanism", "SCRAM-SHA-256", "--user", user, "--sasl-password-file", password(user), "--provision=false"}
}

// with adds to opts what the suite's own clients need: on the secured
// cluster, TLS and the admin user (a super user).
func with(opts ...kgo.Opt) []kgo.Opt { return as("admin", opts...) }

// as is with for another user of the secured cluster.
func as(user string, opts ...kgo.Opt) []kgo.Opt {
	if !secure {
		return opts
	}
	pem, err := os.ReadFile(filepath.Join(runDir, "tls", "ca.pem"))
	if err != nil {
		panic(err)
	}
	pw, err := os.ReadFile(password(user))
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return append([]kgo.Opt{kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
		kgo.SASL(scram.Auth{User: user, Pass: strings.TrimSpace(string(pw))}.AsSha256Mechanism())}, opts...)
}

// provisionAs creates the topics that flags name, as the admin, and
// grants role exactly the ACLs `monitorme acls` lists for it (extra:
// --group and the like). On the plaintext cluster the roles provision
// their topics themselves.
func provisionAs(t *testing.T, role string, topics kafka.Topics, flags []string, extra ...string) {
	t.Helper()
	if !secure {
		return
	}
	admin := append([]string{"--brokers", strings.Join(brokers, ",")}, kafkaFlags("admin")...)
	admin = slices.DeleteFunc(admin, func(s string) bool { return s == "--provision=false" })
	for _, args := range [][]string{
		append(append([]string{"topics"}, admin...), flags...),
		append(append(append([]string{"acls", "--role", role, "--apply"}, admin...), flags...), extra...),
	} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("monitorme %s: %v\n%s", args[0], err, out)
		}
	}
	// Every broker applies the new ACLs from the metadata log a moment
	// later; the role checks its grants at start.
	adm := kadm.NewClient(testkit.SeedClient(t, brokers, as(role)...))
	testkit.Eventually(t, 30*time.Second, "User:"+role+"'s grants in force", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		td, err := adm.ListTopics(ctx, topics.Names()...)
		return err == nil && td.Error() == nil && len(td) == len(topics.Names())
	})
}

func need(t *testing.T) {
	t.Helper()
	if !enabled {
		t.Skip("real-broker suite: run `make e2e` (MONITORME_E2E=1)")
	}
}

func script(args ...string) error {
	cmd := exec.Command("./kafka.sh", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kafka.sh %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// down holds the brokers a test killed and has not restarted; a test that
// fails halfway restarts them on cleanup so the next case starts healthy.
var down = map[int]bool{}

func killBroker(t *testing.T, id int) {
	t.Helper()
	if err := script("kill", fmt.Sprint(id)); err != nil {
		t.Fatal(err)
	}
	down[id] = true
	t.Cleanup(func() {
		if down[id] {
			startBroker(t, id)
		}
	})
	t.Logf("SIGKILLed broker %d", id)
}

func startBroker(t *testing.T, id int) {
	t.Helper()
	if err := script("start", fmt.Sprint(id)); err != nil {
		t.Fatal(err)
	}
	delete(down, id)
	t.Logf("restarted broker %d", id)
}

// waitISR waits until every partition of topics has its full replica set
// in sync, so the next case starts from a healthy cluster.
func waitISR(t *testing.T, topics ...string) {
	t.Helper()
	adm := kadm.NewClient(testkit.SeedClient(t, brokers, with()...))
	testkit.Eventually(t, 3*time.Minute, "all replicas back in sync", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		td, err := adm.ListTopics(ctx, topics...)
		if err != nil {
			return false
		}
		for _, d := range td {
			for _, p := range d.Partitions {
				if p.Err != nil || len(p.ISR) != len(p.Replicas) || p.Leader < 0 {
					return false
				}
			}
		}
		return len(td) == len(topics)
	})
}

// proc is a monitorme process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	done   chan error
	exited atomic.Bool
}

var procSeq struct {
	sync.Mutex
	n int
}

func startRole(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	procSeq.Lock()
	procSeq.n++
	n := procSeq.n
	procSeq.Unlock()
	logf, err := os.Create(filepath.Join(logDir, fmt.Sprintf("%03d-%s.log", n, name)))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan error, 1)}
	go func() {
		err := cmd.Wait()
		p.exited.Store(true)
		logf.Close()
		p.done <- err
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill SIGKILLs the process and waits for it.
func (p *proc) kill() {
	if p.exited.Load() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.done <- nil // later kill calls return at once
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop(t *testing.T) int {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(45 * time.Second):
		t.Errorf("%s did not stop within 45s of SIGTERM", p.name)
		p.kill()
	}
	p.done <- nil
	return p.cmd.ProcessState.ExitCode()
}

func freeAddr(t *testing.T) string { return testkit.FreeAddr(t) }

func waitReady(t *testing.T, addr string, timeout time.Duration) {
	t.Helper()
	testkit.Eventually(t, timeout, addr+"/readyz answers 200", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// topicFlags gives a case its own topics and group.
func topicFlags(prefix string) (kafka.Topics, []string) {
	tp := kafka.Topics{Vitals: prefix + ".vitals", Alerts: prefix + ".alerts", State: prefix + ".state", Acks: prefix + ".acks",
		VitalsDLQ: prefix + ".vitals.dlq", AlertsDLQ: prefix + ".alerts.dlq", AcksDLQ: prefix + ".acks.dlq", Placements: prefix + ".placements"}
	return tp, flagsFor(tp)
}

// flagsFor are the role flags that name the topics of tp.
func flagsFor(tp kafka.Topics) []string {
	return append(tp.Args(), "--replication-factor", "3")
}

// thresholdRules makes a processor raise one alert per reading beyond a
// limit, with no state and no timers: the cases that count alerts against
// the readings they sent need the expected set to be a function of the
// input alone. The clinical engine is compared with an unkilled run of
// itself instead (case f).
var thresholdRules = []string{"--rules", "threshold"}

// readings returns n readings numbered from seq; every tenth is a heart
// rate of 130 (one heart_rate_high alert each).
func readings(prefix string, seq uint64, n int) []schemas.Reading {
	rs := make([]schemas.Reading, n)
	ts := time.Now().UTC().Add(-time.Minute)
	for i := range rs {
		s := seq + uint64(i)
		v := 80.0
		if s%10 == 0 {
			v = 130
		}
		rs[i] = schemas.Reading{PatientID: fmt.Sprintf("%s-P%03d", prefix, s%200), DeviceID: fmt.Sprintf("%s-D%03d", prefix, s%200),
			Kind: schemas.HeartRate, Value: v, Unit: "/min", TS: ts.Add(time.Duration(s) * time.Microsecond), Seq: s}
	}
	return rs
}

func expectedAlerts(rs []schemas.Reading) map[string]bool {
	want := map[string]bool{}
	for i := range rs {
		if rs[i].Value > 120 {
			want[schemas.AlertID("heart_rate_high", &rs[i])] = true
		}
	}
	return want
}

func post(client *http.Client, addr string, rs []schemas.Reading) (int, error) {
	body, err := json.Marshal(rs)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/vitals", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+deviceToken)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// countReadings reads topic and returns how often each seq is in it.
func countReadings(t *testing.T, seeds []string, topic string) map[uint64]int {
	t.Helper()
	got := map[uint64]int{}
	for _, r := range testkit.ReadAllFrom(t, seeds, topic, kgo.ReadCommitted(), with()...) {
		reading, err := schemas.DecodeReading(r)
		if err != nil {
			t.Fatalf("undecodable record at %s/%d/%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
		got[reading.Seq]++
	}
	return got
}

// countAlerts reads topic with read_committed and returns how often each
// alert id is in it.
func countAlerts(t *testing.T, seeds []string, topic string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, a := range readAlerts(t, seeds, topic) {
		got[a.AlertID]++
	}
	return got
}

// readAlerts reads topic's alert events with read_committed.
func readAlerts(t *testing.T, seeds []string, topic string) []schemas.Alert {
	t.Helper()
	var out []schemas.Alert
	for _, r := range testkit.ReadAllFrom(t, seeds, topic, kgo.ReadCommitted(), with()...) {
		if testkit.IsFence(r) {
			continue // a fence of an earlier read
		}
		a, err := schemas.DecodeAlert(r)
		if err != nil {
			t.Fatalf("undecodable alert at %s/%d/%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
		out = append(out, a)
	}
	return out
}

// alertCheck compares alerts found with those expected.
type alertCheck struct{ want, found, missing, dups, unexpected int }

func checkAlerts(want map[string]bool, got map[string]int) alertCheck {
	c := alertCheck{want: len(want)}
	for id := range want {
		switch n := got[id]; {
		case n == 0:
			c.missing++
		default:
			c.found++
			c.dups += n - 1
		}
	}
	for id := range got {
		if !want[id] {
			c.unexpected++
		}
	}
	return c
}

// row is one line of the summary table.
type row struct {
	name                     string
	sent, acked, found, dups int
	alertsWant, alertsFound  int
	kills                    string
	elapsed                  time.Duration
	result                   string
}

var summary struct {
	sync.Mutex
	rows []row
}

func record(r row) {
	summary.Lock()
	defer summary.Unlock()
	summary.rows = append(summary.rows, r)
}

func printSummary(code int) {
	summary.Lock()
	defer summary.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "| case | readings sent | acknowledged (202) | acknowledged found | duplicates | alerts expected | alerts found | kills | elapsed | result |\n")
	fmt.Fprintf(&b, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |\n")
	for _, r := range summary.rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %s | %.0fs | %s |\n",
			r.name, r.sent, r.acked, r.found, r.dups, r.alertsWant, r.alertsFound, r.kills, r.elapsed.Seconds(), r.result)
	}
	status := "PASS"
	if code != 0 {
		status = "FAIL"
	}
	fmt.Fprintf(&b, "\nsuite: %s, %s, against 3 Apache Kafka 3.9.1 brokers (KRaft) on loopback\n", status, time.Now().UTC().Format(time.RFC3339))
	fmt.Println("\n=== MonitorMe e2e summary ===")
	fmt.Print(b.String())
	_ = os.WriteFile(filepath.Join(".out", "summary.md"), []byte(b.String()), 0o644)
}

func result(t *testing.T) string {
	if t.Failed() {
		return "FAIL"
	}
	return "ok"
}

// logDuplicates names every record of topic whose identity (key of the
// record, as ident computes it) is there more than once: where each copy
// is, its timestamp and the producer that wrote it. The same producer id
// twice points at the broker's idempotence; two producers, at a record
// processed twice (a commit that did not survive a crash).
func logDuplicates(t *testing.T, seeds []string, topic string, ident func(*kgo.Record) string) {
	t.Helper()
	copies := map[string][]*kgo.Record{}
	for _, r := range testkit.ReadAllFrom(t, seeds, topic, kgo.ReadCommitted(), with()...) {
		if testkit.IsFence(r) {
			continue
		}
		id := ident(r)
		copies[id] = append(copies[id], r)
	}
	for id, rs := range copies {
		if len(rs) < 2 {
			continue
		}
		var where []string
		for _, r := range rs {
			where = append(where, fmt.Sprintf("%s/%d/%d ts=%s producer=%d epoch=%d", r.Topic, r.Partition, r.Offset,
				r.Timestamp.UTC().Format(time.RFC3339Nano), r.ProducerID, r.ProducerEpoch))
		}
		t.Logf("duplicate %s in %s: %s", id, topic, strings.Join(where, "; "))
	}
}

// readingIdent and alertIdent are the identities the e2e cases count by.
func readingIdent(r *kgo.Record) string {
	rd, err := schemas.DecodeReading(r)
	if err != nil {
		return "undecodable " + string(r.Value)
	}
	return fmt.Sprintf("reading seq %d", rd.Seq)
}

func alertIdent(r *kgo.Record) string {
	a, err := schemas.DecodeAlert(r)
	if err != nil {
		return "undecodable " + string(r.Value)
	}
	return "alert " + a.AlertID + " " + string(a.State)
}
