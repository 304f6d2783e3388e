package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Ping asks the cluster for its metadata within timeout, so that a role
// that cannot reach it stops at start, in seconds, with the cause named:
// a wrong password, an unknown CA, a listener that does not speak TLS, no
// broker answering. Without it the first sign was a produce or provision
// timeout 20 to 30 s later that named none of them.
func Ping(ctx context.Context, cl *kgo.Client, c *Config, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		return c.Explain(err)
	}
	return nil
}

// Explain turns a client error an operator can fix into one that says
// what to fix; other errors pass through.
func (c *Config) Explain(err error) error {
	var (
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		record  tls.RecordHeaderError
	)
	who := fmt.Sprintf("user %q (%s)", c.Security.User, strings.ToUpper(c.Security.SASLMechanism))
	switch {
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.GroupAuthorizationFailed),
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
		code := "AUTHORIZATION_FAILED"
		if ke := (*kerr.Error)(nil); errors.As(err, &ke) {
			code = ke.Message
		}
		return fmt.Errorf("%s for User:%s: the ACLs this role needs are not granted: %w", code, c.Security.User, err)
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Errorf("SASL authentication failed for %s: check the user and the password (--sasl-password-file or %s): %w", who, PasswordEnv, err)
	case errors.Is(err, kerr.UnsupportedSaslMechanism), errors.Is(err, kerr.IllegalSaslState):
		return fmt.Errorf("the brokers do not accept SASL mechanism %s on this listener: %w", strings.ToUpper(c.Security.SASLMechanism), err)
	case errors.As(err, &unknown):
		return fmt.Errorf("the brokers' certificate is signed by an unknown authority: give its CA with --tls-truststore: %w", err)
	case errors.As(err, &host):
		return fmt.Errorf("the brokers' certificate does not name the address dialled: give the name it carries with --tls-server-name: %w", err)
	case errors.As(err, &invalid):
		return fmt.Errorf("the brokers' certificate is not valid (expired, or not for servers): %w", err)
	case errors.As(err, &record):
		return fmt.Errorf("the broker did not answer TLS: is this listener TLS (--tls-enabled)? %w", err)
	case c.Security.mechanism != nil && (errors.Is(err, io.EOF) || strings.Contains(err.Error(), "connection reset")):
		// Some brokers close the connection instead of answering a
		// failed authentication.
		return fmt.Errorf("the broker closed the connection during SASL authentication of %s: most likely a wrong user or password: %w", who, err)
	case strings.Contains(err.Error(), "connection refused"):
		return fmt.Errorf("no broker of %v accepts connections: check --brokers: %w", c.Brokers, err)
	case c.Security.tlsConfig != nil && (errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timeout")):
		// A plaintext listener waits for a Kafka request and never
		// answers the TLS handshake.
		return fmt.Errorf("no broker of %v completed a TLS handshake in time: is this listener TLS (--tls-enabled)? %w", c.Brokers, err)
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timeout"):
		return fmt.Errorf("no broker of %v answered in time: %w", c.Brokers, err)
	}
	return err
}
