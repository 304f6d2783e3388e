// Package warehouse connects MonitorMe to ClickHouse: the connection
// settings every role shares (address, credentials, TLS), the migrations
// `monitorme migrate` applies, and the history queries the API runs. The
// SQL itself lives in schemas/clickhouse, where `make test-sql` runs it
// on the ClickHouse engine.
package warehouse

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/spf13/pflag"
)

// PasswordEnv is read when no password file is given. The password is
// never a flag: flags show in `ps` and in shell history.
const PasswordEnv = "MONITORME_CLICKHOUSE_PASSWORD"

// Config is how to reach ClickHouse. An empty Addr means no ClickHouse:
// the roles that need it refuse to start, and dev runs without history.
type Config struct {
	Addr         []string
	Protocol     string
	Database     string
	User         string
	PasswordFile string
	TLS          bool
	CAFile       string
	CertFile     string
	KeyFile      string
	ServerName   string
	DialTimeout  time.Duration
}

// DefaultConfig has no address: history is off until one is given.
func DefaultConfig() Config {
	return Config{Protocol: "native", Database: "monitorme", User: "default", DialTimeout: 10 * time.Second}
}

// RegisterFlags adds the connection flags.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&c.Addr, "clickhouse-addr", c.Addr, "ClickHouse native-protocol addresses, host:port, comma separated (9000, or 9440 with TLS); empty: no history")
	fs.StringVar(&c.Protocol, "clickhouse-protocol", c.Protocol, "native (port 9000/9440), or http (8123/8443) where only HTTP reaches ClickHouse")
	fs.StringVar(&c.Database, "clickhouse-database", c.Database, "ClickHouse database of the history tables")
	fs.StringVar(&c.User, "clickhouse-user", c.User, "ClickHouse user")
	fs.StringVar(&c.PasswordFile, "clickhouse-password-file", c.PasswordFile, "file holding the ClickHouse password (else $"+PasswordEnv+"; else none)")
	fs.BoolVar(&c.TLS, "clickhouse-tls", c.TLS, "connect to ClickHouse over TLS")
	fs.StringVar(&c.CAFile, "clickhouse-ca-file", c.CAFile, "PEM CA bundle that signed the ClickHouse server's certificate (default: the system's)")
	fs.StringVar(&c.CertFile, "clickhouse-cert-file", c.CertFile, "PEM client certificate, for ClickHouse servers that require one")
	fs.StringVar(&c.KeyFile, "clickhouse-key-file", c.KeyFile, "PEM key of --clickhouse-cert-file")
	fs.StringVar(&c.ServerName, "clickhouse-tls-server-name", c.ServerName, "name the ClickHouse certificate must carry, if not the address's host")
	fs.DurationVar(&c.DialTimeout, "clickhouse-dial-timeout", c.DialTimeout, "timeout of a ClickHouse connection attempt")
}

// Enabled says whether an address was given.
func (c *Config) Enabled() bool { return len(c.Addr) > 0 }

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Validate names every setting that is wrong.
func (c *Config) Validate() error {
	var errs []error
	for _, a := range c.Addr {
		if !strings.Contains(a, ":") {
			errs = append(errs, fmt.Errorf("clickhouse-addr: %q is not host:port", a))
		}
	}
	// The database name is part of DDL text (CREATE DATABASE takes no
	// parameters), so only a plain identifier is accepted.
	if !identifier.MatchString(c.Database) {
		errs = append(errs, fmt.Errorf("clickhouse-database: %q, want letters, digits and underscores, not starting with a digit", c.Database))
	}
	if c.Protocol != "native" && c.Protocol != "http" {
		errs = append(errs, fmt.Errorf("clickhouse-protocol: %q, want native or http", c.Protocol))
	}
	if c.User == "" {
		errs = append(errs, errors.New("clickhouse-user: empty"))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("clickhouse-cert-file and clickhouse-key-file: give both or neither"))
	}
	if !c.TLS && (c.CAFile != "" || c.CertFile != "" || c.ServerName != "") {
		errs = append(errs, errors.New("clickhouse-ca-file, -cert-file and -tls-server-name need --clickhouse-tls"))
	}
	if c.DialTimeout <= 0 {
		errs = append(errs, fmt.Errorf("clickhouse-dial-timeout: %v, want more than 0", c.DialTimeout))
	}
	return errors.Join(errs...)
}

// password reads the password file, or the environment.
func (c *Config) password() (string, error) {
	if c.PasswordFile == "" {
		return os.Getenv(PasswordEnv), nil
	}
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("clickhouse-password-file: %w", err)
	}
	// A trailing newline is the editor's, not the password's.
	return strings.TrimRight(string(b), "\r\n"), nil
}

// tlsConfig builds the TLS settings, or nil without --clickhouse-tls.
func (c *Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("clickhouse-ca-file: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("clickhouse-ca-file %s: no PEM certificate in it", c.CAFile)
		}
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("clickhouse-cert-file/-key-file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// options are the clickhouse-go options for database db.
func (c *Config) options(db string) (*chgo.Options, error) {
	pw, err := c.password()
	if err != nil {
		return nil, err
	}
	t, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	o := &chgo.Options{
		Addr:        c.Addr,
		Auth:        chgo.Auth{Database: db, Username: c.User, Password: pw},
		TLS:         t,
		DialTimeout: c.DialTimeout,
		Compression: &chgo.Compression{Method: chgo.CompressionLZ4},
		ClientInfo:  chgo.ClientInfo{Products: []struct{ Name, Version string }{{Name: "monitorme", Version: "1"}}},
	}
	if c.Protocol == "http" {
		// HTTP compresses the body with gzip instead of native blocks.
		o.Protocol, o.Compression = chgo.HTTP, &chgo.Compression{Method: chgo.CompressionGZIP}
	}
	return o, nil
}

// Open connects to the history database and checks the server answers.
func Open(ctx context.Context, c Config) (driver.Conn, error) {
	return open(ctx, c, c.Database)
}

func open(ctx context.Context, c Config, db string) (driver.Conn, error) {
	opts, err := c.options(db)
	if err != nil {
		return nil, err
	}
	conn, err := chgo.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse %v: %w", c.Addr, err)
	}
	pctx, cancel := context.WithTimeout(ctx, c.DialTimeout)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse %v, database %s: %w", c.Addr, c.Database, err)
	}
	return conn, nil
}
