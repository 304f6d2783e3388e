package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Authenticator turns a request's token into a Principal.
type Authenticator struct {
	cfg      Config
	verifier *oidc.IDTokenVerifier
	tokens   *tokenStore
	log      *slog.Logger
}

// New returns the authenticator cfg describes. With an issuer and no JWKS
// URL it reads the issuer's discovery document now, so an unreachable or
// wrong issuer ends the role at start, not at the first nurse's request.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Authenticator{cfg: cfg, log: log}
	hashed := make(map[string]Principal, len(cfg.Issued))
	for tok, p := range cfg.Issued {
		hashed[Hash(tok)] = p
	}
	var err error
	if a.tokens, err = newTokenStore(cfg.TokenFile, hashed, func(err error) {
		log.Error("token file not reloaded; the tokens read before stay in force", "err", err)
	}); err != nil {
		return nil, err
	}
	if cfg.Issuer == "" {
		return a, nil
	}
	client, err := issuerClient(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	// The key set keeps this context for its later fetches (rotation),
	// so it carries the client and never ends.
	kctx := oidc.ClientContext(context.Background(), client)
	vc := &oidc.Config{ClientID: cfg.Audience, SupportedSigningAlgs: cfg.Algorithms}
	if cfg.JWKSURL != "" {
		a.verifier = oidc.NewVerifier(cfg.Issuer, oidc.NewRemoteKeySet(kctx, cfg.JWKSURL), vc)
		return a, nil
	}
	dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, client), 10*time.Second)
	defer cancel()
	provider, err := oidc.NewProvider(dctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("auth-issuer: read the discovery document of %s: %w (or give --auth-jwks-url)", cfg.Issuer, err)
	}
	a.verifier = provider.VerifierContext(kctx, vc)
	return a, nil
}

func issuerClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("auth-ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("auth-ca-file %s: no PEM certificate in it", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, nil
}

// Insecure says whether the server runs without authentication.
func (a *Authenticator) Insecure() bool { return a.cfg.Insecure }

// anonymous is every caller of an --insecure server.
var anonymous = Principal{Subject: "anonymous", Roles: []Role{Admin}, Method: "none"}

// errNoToken and errBadToken are the two ways to be unauthenticated; the
// 401 says which.
var (
	errNoToken  = errors.New("no bearer token")
	errBadToken = errors.New("invalid token")
)

// Authenticate returns the principal of token. A static token is looked up
// first (a token file's tokens are not JWTs); anything else must be a JWT
// the issuer signed.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (Principal, error) {
	if a.cfg.Insecure {
		return anonymous, nil
	}
	if token == "" {
		return Principal{}, errNoToken
	}
	if p, ok := a.tokens.lookup(token); ok {
		return p, nil
	}
	if a.verifier == nil || strings.Count(token, ".") != 2 {
		return Principal{}, fmt.Errorf("%w: not a token this server knows", errBadToken)
	}
	idt, err := a.verifier.Verify(ctx, token)
	if err != nil {
		// The library's reason (expired, wrong audience, unknown key,
		// algorithm) is what the caller needs, and holds no secret.
		return Principal{}, fmt.Errorf("%w: %s", errBadToken, strings.TrimPrefix(err.Error(), "oidc: "))
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Principal{}, fmt.Errorf("%w: claims: %v", errBadToken, err)
	}
	p := Principal{Method: "oidc", Expiry: idt.Expiry}
	p.Subject, _ = claim(claims, a.cfg.SubjectClaim).(string)
	if p.Subject == "" {
		return Principal{}, fmt.Errorf("%w: no %s claim to name the caller", errBadToken, a.cfg.SubjectClaim)
	}
	for _, r := range strings_(claim(claims, a.cfg.RolesClaim)) {
		if role, err := ParseRole(r); err == nil {
			p.Roles = append(p.Roles, role)
		}
	}
	if devs := claim(claims, a.cfg.DevicesClaim); devs != nil {
		p.Devices = strings_(devs)
		if p.Devices == nil {
			p.Devices = []string{}
		}
	}
	return p, nil
}

// claim follows a dotted path into the claims.
func claim(claims map[string]any, path string) any {
	var v any = claims
	for part := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	return v
}

// strings_ reads a claim that lists names: a JSON array of strings, or
// one space-separated string (as the OAuth scope claim is).
func strings_(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
