package roles

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/monitorme/monitorme/internal/auth"
	"github.com/monitorme/monitorme/internal/auth/authtest"
	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/schemas"
)

// On a cluster that denies everything not granted, each role runs under
// its own user with only the ACLs `monitorme acls` grants for it, and the
// platform works: a reading posted to ingest raises an alert the
// processor writes in a transaction, the API shows it, and an
// acknowledgement through the API reaches the processor. A role started
// under a user without its grants ends at once, naming the grant.
func TestRolesRunWithOnlyTheirACLs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three roles")
	}
	users := []string{"ingest", "process", "api"}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.EnableSASL(), kfake.EnableACLs(), kfake.Superuser(kafka.ScramSHA256, "admin", "admin-pw")}
	for _, u := range users {
		opts = append(opts, kfake.User(kafka.ScramSHA256, u, u+"-pw"))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir := t.TempDir()
	kflags := func(user string) []string {
		pw := filepath.Join(dir, user+".pw")
		if err := os.WriteFile(pw, []byte(user+"-pw\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{"--brokers", strings.Join(c.ListenAddrs(), ","), "--sasl-mechanism", kafka.ScramSHA256, "--user", user, "--sasl-password-file", pw,
			"--partitions", "3", "--log-level", "warn"}
	}
	run := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), args, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := run(append([]string{"topics"}, kflags("admin")...)...); code != 0 {
		t.Fatalf("topics as admin: %d %s", code, out)
	}
	// Before its grants, a role ends at start naming what it lacks.
	start := time.Now()
	code, out := run(append([]string{"ingest", "--provision=false", "--http-addr", "127.0.0.1:0", "--insecure"}, kflags("ingest")...)...)
	if code != 1 || !strings.Contains(out, "User:ingest") || !strings.Contains(out, "vitals.v1") || !strings.Contains(out, "AUTHORIZATION_FAILED") {
		t.Fatalf("ingest without its ACLs: exit %d after %v: %s", code, time.Since(start), out)
	}
	t.Logf("without its ACLs, after %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	for _, role := range users {
		if code, out := run(append([]string{"acls", "--role", role, "--apply"}, kflags("admin")...)...); code != 0 {
			t.Fatalf("grant %s: %d %s", role, code, out)
		}
	}
	// The api user holds the api's grants, not ingest's.
	code, out = run(append([]string{"ingest", "--provision=false", "--http-addr", "127.0.0.1:0", "--insecure"}, kflags("api")...)...)
	if code != 1 || !strings.Contains(out, "User:api lacks Write on topic vitals.v1") {
		t.Fatalf("ingest as the api user: exit %d: %s", code, out)
	}

	tokens, _, toks := authtest.Tokens(t, auth.TokenEntry{Subject: "gw", Roles: []string{"device"}}, auth.TokenEntry{Subject: "nurse-7", Roles: []string{"clinician"}})
	device, nurse := toks[0], toks[1]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := map[string]string{}
	exited := make(chan string, len(users))
	for _, role := range users {
		addrs[role] = testkit.FreeAddr(t)
		args := append([]string{role, "--provision=false", "--http-addr", addrs[role]}, kflags(role)...)
		if role != "process" {
			args = append(args, "--auth-token-file", tokens)
		}
		go func() {
			var out bytes.Buffer
			code := Run(ctx, args, &out, &out)
			exited <- fmt.Sprintf("%s exited %d: %s", role, code, out.String())
		}()
	}
	for _, role := range users {
		testkit.Eventually(t, 60*time.Second, role+" ready", func() bool {
			select {
			case msg := <-exited:
				t.Fatal(msg)
			default:
			}
			resp, err := http.Get("http://" + addrs[role] + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
	}
	call := func(method, url, token, body string) (int, string) {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	if code, body := call("POST", "http://"+addrs["ingest"]+"/v1/vitals", device,
		`[{"patient_id":"P7","device_id":"ox-7","kind":"spo2","value":75,"unit":"%","ts":"`+ts+`","seq":1}]`); code != 202 {
		t.Fatalf("post a reading: %d %s", code, body)
	}
	var alerts struct{ Alerts []schemas.Alert }
	testkit.Eventually(t, 30*time.Second, "the alert on the API", func() bool {
		return getJSONToken(t, "http://"+addrs["api"]+"/v1/alerts?patient=P7", nurse, &alerts) == 200 && len(alerts.Alerts) > 0
	})
	if code, body := call("POST", "http://"+addrs["api"]+"/v1/alerts/"+alerts.Alerts[0].AlertID+"/ack", nurse, ""); code != 202 || !strings.Contains(body, `"by":"nurse-7"`) {
		t.Fatalf("acknowledge: %d %s", code, body)
	}
	testkit.Eventually(t, 30*time.Second, "the acknowledgement processed", func() bool {
		if getJSONToken(t, "http://"+addrs["api"]+"/v1/alerts?patient=P7", nurse, &alerts) != 200 {
			return false
		}
		for _, a := range alerts.Alerts {
			if a.State == schemas.Acknowledged && a.AckedBy == "nurse-7" {
				return true
			}
		}
		return false
	})
	t.Logf("alert events of P7 on the API: %d, the last %s by %s", len(alerts.Alerts), alerts.Alerts[len(alerts.Alerts)-1].State, alerts.Alerts[len(alerts.Alerts)-1].AckedBy)
	cancel()
	for range users {
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Fatal("a role did not stop")
		}
	}
}

func getJSONToken(t *testing.T, url, token string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(v)
	return resp.StatusCode
}

// docs/security.md lists each role's ACLs as `monitorme acls --format
// table` prints them.
func TestSecurityDocListsTheACLs(t *testing.T) {
	doc, err := os.ReadFile("../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range kafka.ACLRoles {
		var out bytes.Buffer
		if code := Run(context.Background(), []string{"acls", "--role", role, "--format", "table"}, &out, &out); code != 0 {
			t.Fatalf("acls --role %s: %d %s", role, code, out.String())
		}
		if !strings.Contains(string(doc), "### "+role+"\n\n```\n"+out.String()+"```") {
			t.Errorf("docs/security.md does not list the ACLs of %s as monitorme acls prints them:\n%s", role, out.String())
		}
	}
}
