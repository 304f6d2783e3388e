package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// g. On the secured cluster a role that cannot authenticate, or lacks an
// ACL, ends at start within seconds, exit 1, naming the cause; and the
// controllers need no ANONYMOUS super user (kafka.sh: mTLS between nodes).
func TestSecuredClusterRefusesStrangers(t *testing.T) {
	need(t)
	secureOnly(t)
	start := time.Now()
	topics, flags := topicFlags("e2e-g")
	provisionAs(t, "ingest", topics, flags)
	wrong := filepath.Join(t.TempDir(), "wrong.pw")
	if err := os.WriteFile(wrong, []byte("not-the-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens := []string{"--insecure"}
	type attempt struct {
		name string
		args []string
		want []string
	}
	var attempts []attempt
	for _, role := range []string{"ingest", "process", "api", "sink", "topics"} {
		args := append([]string{role, "--brokers", strings.Join(brokers, ",")}, flags...)
		switch role {
		case "ingest", "api":
			args = append(args, tokens...)
		case "sink":
			args = append(args, "--clickhouse-addr", "127.0.0.1:1")
		}
		if role != "topics" {
			args = append(args, "--http-addr", freeAddr(t))
		}
		// The role's own user, with a password file that is wrong.
		kf := kafkaFlags(role)
		if role == "topics" {
			kf = slices.DeleteFunc(kafkaFlags("admin"), func(s string) bool { return s == "--provision=false" }) // topics has no --provision
		}
		for i, f := range kf {
			if f == "--sasl-password-file" {
				kf[i+1] = wrong
			}
		}
		attempts = append(attempts, attempt{role + " with a wrong password", append(args, kf...),
			[]string{"SASL authentication failed", "check the user and the password"}})
	}
	attempts = append(attempts,
		attempt{"ingest as a user without any ACL", append(append([]string{"ingest", "--brokers", strings.Join(brokers, ","), "--http-addr", freeAddr(t), "--insecure"}, flags...), kafkaFlags("noacl")...),
			[]string{"TOPIC_AUTHORIZATION_FAILED", "User:noacl", topics.Vitals}},
		attempt{"ingest as the api's user (no Write on vitals)", append(append([]string{"ingest", "--brokers", strings.Join(brokers, ","), "--http-addr", freeAddr(t), "--insecure"}, flags...), kafkaFlags("api")...),
			[]string{"TOPIC_AUTHORIZATION_FAILED", "User:api lacks Write on topic " + topics.Vitals}},
	)
	// The api's grants are on the default topics, not e2e-g's: grant
	// them on e2e-g so that only Write on vitals is missing.
	provisionAs(t, "api", topics, flags)
	for _, a := range attempts {
		began := time.Now()
		cmd := exec.Command(bin, a.args...)
		out, err := cmd.CombinedOutput()
		took := time.Since(began)
		code := cmd.ProcessState.ExitCode()
		msg := string(out)
		ok := err != nil && code == 1 && took < 5*time.Second
		for _, w := range a.want {
			ok = ok && strings.Contains(msg, w)
		}
		if strings.Contains(msg, "not-the-password") {
			t.Errorf("%s: the password is in the output", a.name)
		}
		if !ok {
			t.Errorf("%s: exit %d after %v, want exit 1 within 5 s naming %q:\n%s", a.name, code, took.Round(time.Millisecond), a.want, msg)
			continue
		}
		last := strings.TrimSpace(msg[strings.LastIndex(strings.TrimSpace(msg), "\n")+1:])
		t.Logf("%s: exit 1 after %v: %.240s", a.name, took.Round(time.Millisecond), last)
	}
	record(row{name: "g. secured cluster: wrong password (5 roles) and missing ACLs (2) end the role at start, named", kills: "-",
		elapsed: time.Since(start), result: result(t)})
}
