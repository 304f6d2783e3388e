package warehouse

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"

	chschema "github.com/monitorme/monitorme/schemas/clickhouse"
)

// fakeDB records statements and answers the two version queries.
type fakeDB struct {
	server  string
	applied []uint32 // schema_migrations rows
	execs   []string
	failOn  string // an Exec containing this fails
}

func (f *fakeDB) Exec(ctx context.Context, query string, _ ...any) error {
	if f.failOn != "" && strings.Contains(query, f.failOn) {
		return context.DeadlineExceeded
	}
	f.execs = append(f.execs, query)
	if query == RecordVersionSQL {
		// The version travels as a bound parameter, as to a server.
		v, err := strconv.ParseUint(boundParams(ctx)["version"], 10, 32)
		if err != nil {
			return err
		}
		f.applied = append(f.applied, uint32(v))
	}
	return nil
}

func (f *fakeDB) Select(_ context.Context, dest any, query string, _ ...any) error {
	switch d := dest.(type) {
	case *[]struct {
		V string `ch:"v"`
	}:
		*d = append(*d, struct {
			V string `ch:"v"`
		}{f.server})
	case *[]struct {
		V uint32 `ch:"v"`
	}:
		*d = append(*d, struct {
			V uint32 `ch:"v"`
		}{slices.Max(append([]uint32{0}, f.applied...))})
	}
	return nil
}

func TestApplyRunsEachVersionOnce(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	db := &fakeDB{server: "25.3.1.1"}
	ctx := context.Background()
	if err := CheckServer(ctx, db); err != nil {
		t.Fatal(err)
	}
	from, to, err := Apply(ctx, db, chschema.DefaultSettings(), log)
	if err != nil || from != 0 || to != chschema.Latest() {
		t.Fatalf("first run: %d -> %d, %v", from, to, err)
	}
	ms, _ := chschema.Migrations(chschema.DefaultSettings())
	want, versions := 1, []uint32{}
	for _, m := range ms {
		want += len(m.Statements) + 1
		versions = append(versions, uint32(m.Version))
	}
	if len(db.execs) != want || db.execs[0] != MigrationsTableSQL || db.execs[len(db.execs)-1] != RecordVersionSQL {
		t.Fatalf("executed %d statements, want %d: %q", len(db.execs), want, db.execs)
	}
	if !slices.Equal(db.applied, versions) {
		t.Fatalf("recorded %v, want %v", db.applied, versions)
	}
	if err := RequireSchema(ctx, db); err != nil {
		t.Fatal(err)
	}

	db.execs = nil
	from, to, err = Apply(ctx, db, chschema.DefaultSettings(), log)
	if err != nil || from != to || len(db.execs) != 1 {
		t.Fatalf("second run: %d -> %d, %v, executed %q", from, to, err, db.execs)
	}

	// A database a newer monitorme migrated is not touched.
	db.applied = append(db.applied, uint32(chschema.Latest()+1))
	db.execs = nil
	if _, _, err := Apply(ctx, db, chschema.DefaultSettings(), log); err == nil || !strings.Contains(err.Error(), "newer than this monitorme") || len(db.execs) != 1 {
		t.Fatalf("newer schema: %v, executed %q", err, db.execs)
	}
}

func TestApplyStopsAtAFailedStatement(t *testing.T) {
	db := &fakeDB{server: "24.8.4.13", failOn: "CREATE MATERIALIZED VIEW"}
	_, to, err := Apply(context.Background(), db, chschema.DefaultSettings(), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "schema version 1 (history), statement") || to != 0 || len(db.applied) != 0 {
		t.Fatalf("to %d, applied %v, err %v", to, db.applied, err)
	}
	if err := RequireSchema(context.Background(), db); err == nil || !strings.Contains(err.Error(), "run `monitorme migrate` first") {
		t.Fatalf("unmigrated database accepted: %v", err)
	}
}

func TestOldServerRefused(t *testing.T) {
	err := CheckServer(context.Background(), &fakeDB{server: "23.3.2.1"})
	if err == nil || !strings.Contains(err.Error(), "23.3.2.1 is older than 24.8") {
		t.Fatalf("got %v", err)
	}
}

func TestPasswordFromFileOrEnvironment(t *testing.T) {
	c := DefaultConfig()
	t.Setenv(PasswordEnv, "from-env")
	if pw, err := c.password(); err != nil || pw != "from-env" {
		t.Fatalf("env: %q %v", pw, err)
	}
	c.PasswordFile = filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(c.PasswordFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if pw, err := c.password(); err != nil || pw != "s3cret" {
		t.Fatalf("file: %q %v", pw, err)
	}
	c.PasswordFile += ".missing"
	if _, err := c.password(); err == nil || !strings.Contains(err.Error(), "clickhouse-password-file") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	c := DefaultConfig()
	c.Addr = []string{"ch.example:9440"}
	c.TLS, c.CAFile, c.CertFile, c.KeyFile, c.ServerName = true, certFile, certFile, keyFile, "ch.internal"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	opts, err := c.options(c.Database)
	if err != nil {
		t.Fatal(err)
	}
	if opts.TLS == nil || opts.TLS.RootCAs == nil || len(opts.TLS.Certificates) != 1 || opts.TLS.ServerName != "ch.internal" || opts.Auth.Database != "monitorme" {
		t.Fatalf("options %+v", opts)
	}
	c.CAFile = keyFile // a key is not a certificate
	if _, err := c.options(c.Database); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("bad CA file: %v", err)
	}
	c.TLS, c.CAFile, c.CertFile, c.KeyFile, c.ServerName = false, "", "", "", ""
	if opts, err := c.options(""); err != nil || opts.TLS != nil || opts.Protocol != chgo.Native || opts.Compression.Method != chgo.CompressionLZ4 {
		t.Fatalf("plain: %+v %v", opts, err)
	}
	c.Protocol = "http"
	if opts, err := c.options(""); err != nil || opts.Protocol != chgo.HTTP || opts.Compression.Method != chgo.CompressionGZIP {
		t.Fatalf("http: %+v %v", opts, err)
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ch.internal"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"ch.internal"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
