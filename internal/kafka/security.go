package kafka

// How every role reaches a secured cluster: TLS (a CA bundle, an optional
// client certificate, a server name) and SASL (SCRAM-SHA-256,
// SCRAM-SHA-512, or PLAIN over TLS only). One block of settings for every
// role, named as rpk names them. The password comes from a file or the
// environment, never from a flag value: a flag shows in ps and in shell
// history.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// PasswordEnv is the environment variable the SASL password may come from
// when --sasl-password-file is not given.
const PasswordEnv = "MONITORME_KAFKA_PASSWORD"

// SASL mechanisms.
const (
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
	Plain       = "PLAIN"
)

// Security is the TLS and SASL settings of the clients of a role.
type Security struct {
	// TLS turns TLS on; CAFile (PEM, the brokers' CA bundle; empty: the
	// system's roots), CertFile and KeyFile (a client certificate, for
	// mTLS) and ServerName (when the brokers' certificate names another
	// host than the seed address) imply it.
	TLS                       bool
	CAFile, CertFile, KeyFile string
	ServerName                string
	// SASLMechanism is empty (no SASL), SCRAM-SHA-256, SCRAM-SHA-512 or
	// PLAIN; User the SASL user; PasswordFile a file holding the password
	// (one line), else the environment variable PasswordEnv.
	SASLMechanism, User string
	PasswordFile        string

	tlsConfig *tls.Config
	mechanism sasl.Mechanism
	loaded    bool
}

// RegisterFlags binds the settings to flags named as rpk names them.
func (s *Security) RegisterFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&s.TLS, "tls-enabled", s.TLS, "connect to the brokers over TLS (implied by the other --tls flags)")
	fs.StringVar(&s.CAFile, "tls-truststore", s.CAFile, "PEM file of the CA(s) the brokers' certificates are signed by (default: the system's roots)")
	fs.StringVar(&s.CertFile, "tls-cert", s.CertFile, "PEM client certificate, for brokers that require mTLS (with --tls-key)")
	fs.StringVar(&s.KeyFile, "tls-key", s.KeyFile, "PEM private key of --tls-cert")
	fs.StringVar(&s.ServerName, "tls-server-name", s.ServerName, "host name the brokers' certificates must name, when the seed addresses do not")
	fs.StringVar(&s.SASLMechanism, "sasl-mechanism", s.SASLMechanism, "SASL mechanism: SCRAM-SHA-256, SCRAM-SHA-512, or PLAIN (over TLS only); empty: no SASL")
	fs.StringVar(&s.User, "user", s.User, "SASL user")
	fs.StringVar(&s.PasswordFile, "sasl-password-file", s.PasswordFile, "file holding the SASL password (else the environment variable "+PasswordEnv+"; never a flag)")
}

// load checks the settings and reads the files they name, once, so that
// every client of the role is configured alike and a missing file stops
// the role at start.
func (s *Security) load() error {
	var errs []error
	if s.CAFile != "" || s.CertFile != "" || s.KeyFile != "" || s.ServerName != "" {
		s.TLS = true
	}
	s.tlsConfig, s.mechanism, s.loaded = nil, nil, true
	if s.TLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.ServerName}
		if s.CAFile != "" {
			pem, err := os.ReadFile(s.CAFile)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("tls-truststore: %w", err))
			default:
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					errs = append(errs, fmt.Errorf("tls-truststore: %s holds no PEM certificate", s.CAFile))
				}
				cfg.RootCAs = pool
			}
		}
		switch {
		case (s.CertFile == "") != (s.KeyFile == ""):
			errs = append(errs, errors.New("tls-cert and tls-key: give both (a client certificate and its key) or neither"))
		case s.CertFile != "":
			cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("tls-cert/tls-key: %w", err))
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		s.tlsConfig = cfg
	}
	mech := strings.ToUpper(s.SASLMechanism)
	if mech == "" {
		if s.User != "" || s.PasswordFile != "" {
			errs = append(errs, errors.New("sasl-mechanism: a user or password is given but no mechanism (SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN)"))
		}
		return errors.Join(errs...)
	}
	password, err := s.password()
	if err != nil {
		errs = append(errs, err)
	}
	if s.User == "" {
		errs = append(errs, fmt.Errorf("user: required with sasl-mechanism %s", mech))
	}
	switch mech {
	case ScramSHA256:
		s.mechanism = scram.Auth{User: s.User, Pass: password}.AsSha256Mechanism()
	case ScramSHA512:
		s.mechanism = scram.Auth{User: s.User, Pass: password}.AsSha512Mechanism()
	case Plain:
		if !s.TLS {
			errs = append(errs, errors.New("sasl-mechanism PLAIN sends the password as it is: it needs TLS (--tls-enabled)"))
		}
		s.mechanism = plain.Auth{User: s.User, Pass: password}.AsMechanism()
	default:
		errs = append(errs, fmt.Errorf("sasl-mechanism: %q, want SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN", s.SASLMechanism))
	}
	return errors.Join(errs...)
}

// password reads the SASL password from PasswordFile, else PasswordEnv.
// Errors never include it.
func (s *Security) password() (string, error) {
	if s.PasswordFile != "" {
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("sasl-password-file: %w", err)
		}
		p := strings.TrimRight(string(b), "\r\n")
		if p == "" {
			return "", fmt.Errorf("sasl-password-file: %s is empty", s.PasswordFile)
		}
		return p, nil
	}
	if p := os.Getenv(PasswordEnv); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("sasl password: give --sasl-password-file or set %s", PasswordEnv)
}

// configured says whether any TLS or SASL setting is given.
func (s *Security) configured() bool {
	return s.TLS || s.CAFile != "" || s.CertFile != "" || s.KeyFile != "" || s.ServerName != "" || s.SASLMechanism != ""
}

// opts are the client options of the loaded settings. Settings given but
// never loaded (Config.Validate not called) are a bug that would connect
// in plaintext, without credentials: it panics rather than do that.
func (s *Security) opts() []kgo.Opt {
	if s.configured() && !s.loaded {
		panic("kafka: TLS or SASL settings used before Config.Validate loaded them")
	}
	var opts []kgo.Opt
	if s.tlsConfig != nil {
		opts = append(opts, kgo.DialTLSConfig(s.tlsConfig.Clone()))
	}
	if s.mechanism != nil {
		opts = append(opts, kgo.SASL(s.mechanism))
	}
	return opts
}

// Principal returns who the role is to the brokers, as an audit record
// names it: the SASL user, or the client certificate's subject common
// name (mTLS, User:CN=... on Kafka), and how it authenticated: "sasl",
// "mtls" or "none".
func (s *Security) Principal() (user, method string) {
	switch {
	case s.SASLMechanism != "":
		return s.User, "sasl"
	case s.tlsConfig != nil && len(s.tlsConfig.Certificates) > 0 && s.tlsConfig.Certificates[0].Leaf != nil:
		return s.tlsConfig.Certificates[0].Leaf.Subject.CommonName, "mtls"
	}
	return "", "none"
}
