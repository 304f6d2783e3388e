package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/testcert"
)

// testCA writes a self-signed broker certificate for 127.0.0.1 to dir:
// its file is the CA a client trusts.
func testCA(t *testing.T, dir string) (caFile string, server tls.Certificate) {
	t.Helper()
	caFile, _, _, server = testcert.SelfSigned(t, dir, "broker")
	return caFile, server
}

// A role reaches a cluster over TLS with SCRAM, the CA from a file and the
// password from a file; a wrong password or an unknown CA fails, naming
// the cause and never the password.
func TestTLSAndSCRAM(t *testing.T) {
	dir := t.TempDir()
	caFile, srv := testCA(t, dir)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{srv}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.Superuser(ScramSHA256, "ingest", "s3cret-pw"), kfake.SeedTopics(1, "vitals.v1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Brokers = c.ListenAddrs()
	cfg.Security = Security{CAFile: caFile, SASLMechanism: "scram-sha-256", User: "ingest", PasswordFile: pwFile}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ping := func(cfg Config) error {
		cl, err := kgo.NewClient(cfg.ClientOpts("test")...)
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return cl.Ping(ctx)
	}
	if err := ping(cfg); err != nil {
		t.Fatalf("TLS and SCRAM-SHA-256: %v", err)
	}

	wrong := cfg
	if err := os.WriteFile(pwFile, []byte("not-it"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := wrong.Validate(); err != nil {
		t.Fatal(err)
	}
	err = ping(wrong)
	if err == nil || strings.Contains(err.Error(), "not-it") {
		t.Fatalf("a wrong password: %v", err)
	}
	t.Logf("a wrong password: %v", err)

	noCA := cfg
	noCA.Security.CAFile = ""
	if err := noCA.Validate(); err != nil {
		t.Fatal(err)
	}
	var unknown x509.UnknownAuthorityError
	if err := ping(noCA); !errors.As(err, &unknown) && (err == nil || !strings.Contains(err.Error(), "unknown authority")) {
		t.Fatalf("an unknown CA: %v", err)
	}
}

// Settings that cannot work are refused at start, by Validate.
func TestSecuritySettingsRefused(t *testing.T) {
	t.Setenv(PasswordEnv, "")
	for name, c := range map[string]struct {
		s    Security
		want string
	}{
		"PLAIN in the clear":       {Security{SASLMechanism: Plain, User: "u", PasswordFile: "/dev/null"}, "needs TLS"},
		"no password":              {Security{SASLMechanism: ScramSHA512, User: "u"}, "give --sasl-password-file or set " + PasswordEnv},
		"no user":                  {Security{SASLMechanism: ScramSHA256}, "user: required"},
		"unknown mechanism":        {Security{SASLMechanism: "GSSAPI", User: "u"}, "want SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN"},
		"a user and no mechanism":  {Security{User: "u"}, "no mechanism"},
		"a certificate and no key": {Security{CertFile: "c.pem"}, "give both"},
		"a missing CA file":        {Security{CAFile: "/nonexistent/ca.pem"}, "tls-truststore"},
	} {
		cfg := DefaultConfig()
		cfg.Security = c.s
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	t.Setenv(PasswordEnv, "from-env")
	cfg := DefaultConfig()
	cfg.Security = Security{SASLMechanism: ScramSHA512, User: "u"}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the password from %s: %v", PasswordEnv, err)
	}
}

// Settings used without Validate would connect in plaintext: a bug, which
// panics.
func TestSecurityNeedsValidate(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("ClientOpts with unloaded TLS settings did not panic")
		}
	}()
	cfg := DefaultConfig()
	cfg.Security.TLS = true
	cfg.ClientOpts("x")
}

// A role stops at start, within the ping's bound, with the cause named.
func TestPingNamesTheCause(t *testing.T) {
	dir := t.TempDir()
	caFile, srv := testCA(t, dir)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{srv}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.Superuser(ScramSHA512, "process", "right"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	plain, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	for name, tc := range map[string]struct {
		brokers  []string
		security Security
		password string
		want     string
	}{
		"right":          {c.ListenAddrs(), Security{CAFile: caFile, SASLMechanism: ScramSHA512, User: "process"}, "right", ""},
		"wrong password": {c.ListenAddrs(), Security{CAFile: caFile, SASLMechanism: ScramSHA512, User: "process"}, "Wr0ng-Pa55", "wrong user or password"},
		"unknown CA":     {c.ListenAddrs(), Security{TLS: true, SASLMechanism: ScramSHA512, User: "process"}, "right", "unknown authority: give its CA with --tls-truststore"},
		"TLS to plain":   {plain.ListenAddrs(), Security{TLS: true}, "", "is this listener TLS"},
		"nobody answers": {[]string{"127.0.0.1:1"}, Security{}, "", "accepts connections: check --brokers"},
	} {
		t.Setenv(PasswordEnv, tc.password)
		cfg := DefaultConfig()
		cfg.Brokers, cfg.Security = tc.brokers, tc.security
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cl, err := kgo.NewClient(cfg.ClientOpts("ping")...)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = Ping(context.Background(), cl, &cfg, 3*time.Second)
		cl.Close()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		case tc.password != "" && err != nil && strings.Contains(err.Error(), tc.password):
			t.Errorf("%s: the error carries the password: %v", name, err)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("%s: took %v", name, d)
		}
		t.Logf("%s: %v", name, err)
	}
}

// A user without the ACLs a role needs is told so at start, by name.
func TestMissingACLIsNamed(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser(ScramSHA256, "admin", "admin-pw"), kfake.User(ScramSHA256, "ingest", "ingest-pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv(PasswordEnv, "ingest-pw")
	cfg := DefaultConfig()
	cfg.Brokers, cfg.ReplicationFactor = c.ListenAddrs(), 1
	cfg.Security = Security{SASLMechanism: ScramSHA256, User: "ingest"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(cfg.ClientOpts("acl")...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Ping(ctx, cl, &cfg, 5*time.Second); err != nil {
		t.Fatalf("authenticated, the ping passes: %v", err)
	}
	err = Provision(ctx, kadm.NewClient(cl), &cfg, cfg.Specs(), slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("a user with no ACL provisioned the topics")
	}
	if msg := cfg.Explain(err).Error(); !strings.Contains(msg, "AUTHORIZATION_FAILED") || !strings.Contains(msg, "User:ingest") {
		t.Fatalf("a missing ACL: %s", msg)
	} else {
		t.Log(msg)
	}
}
