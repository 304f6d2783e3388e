// Package auth authenticates the callers of MonitorMe's HTTP API and says
// what each may do. A caller presents a bearer token: a JWT from the
// hospital's identity provider (OIDC: issuer, audience, expiry, allowed
// algorithms, keys from its JWKS, rotated without a restart), or an opaque
// token from a static token file for sites without one. Either way the
// token gives a subject and roles; the route table in policy.go says which
// roles may call which route, and nothing else does.
//
// Why one table: every route of every role (ingest's, the query API's,
// the operational ones) is decided in one place that a test compares with
// the routes the server registers and with the OpenAPI document, so a new
// route cannot be open by omission.
package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/spf13/pflag"

	"github.com/monitorme/monitorme/internal/web"
)

// Role is what a caller may do; a token carries one or more.
type Role string

// The roles. Admin may call every route.
const (
	Device    Role = "device"
	Clinician Role = "clinician"
	Analyst   Role = "analyst"
	Admin     Role = "admin"
	// ADT is a hospital's admission, discharge and transfer interface:
	// it posts where patients are.
	ADT Role = "adt"
)

// Roles are all the roles, in the order documentation lists them.
var Roles = []Role{Device, Clinician, Analyst, ADT, Admin}

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	if r := Role(s); slices.Contains(Roles, r) {
		return r, nil
	}
	return "", fmt.Errorf("role %q: want device, clinician, analyst or admin", s)
}

// Principal is an authenticated caller.
type Principal struct {
	// Subject identifies the caller: a user, a station, a gateway. It is
	// what an acknowledgement records as who acknowledged.
	Subject string
	Roles   []Role
	// Devices, when not nil, are the only device ids whose readings a
	// device token may post.
	Devices []string
	// Method says how the caller was authenticated: "oidc", "token", or
	// "none" when the server runs without authentication (--insecure).
	Method string
	// Expiry is when a JWT expires; zero for a static token.
	Expiry time.Time
}

// Has says whether p may act as role: admin may act as every role.
func (p Principal) Has(role Role) bool {
	return slices.Contains(p.Roles, role) || slices.Contains(p.Roles, Admin)
}

// MayPost says whether p may post readings of device.
func (p Principal) MayPost(device string) bool {
	return p.Devices == nil || slices.Contains(p.Devices, device) || slices.Contains(p.Roles, Admin)
}

const principalKey = "monitorme.principal"

// FromContext returns the caller of the request; ok is false when the
// route is public or the server has no authentication.
func FromContext(c echo.Context) (p Principal, ok bool) {
	p, ok = c.Get(principalKey).(Principal)
	return p, ok
}

func setPrincipal(c echo.Context, p Principal) {
	c.Set(principalKey, p)
	c.Set(web.SubjectKey, p.Subject)
}

// Config is the API's authentication. One of Issuer (OIDC), TokenFile or
// Insecure must be given: a server never runs open by accident.
type Config struct {
	// Issuer is the OIDC issuer URL tokens must carry (iss).
	Issuer string
	// Audience is the audience tokens must be issued for (aud).
	Audience string
	// JWKSURL is where the signing keys are; empty: from the issuer's
	// discovery document (/.well-known/openid-configuration).
	JWKSURL string
	// CAFile is a PEM bundle the issuer's and JWKS's TLS certificates
	// are checked against, beside the system roots.
	CAFile string
	// Algorithms are the signature algorithms accepted.
	Algorithms []string
	// RolesClaim is the claim holding the roles: a name or a dotted path
	// (Keycloak: realm_access.roles), a list or a space-separated string.
	RolesClaim string
	// SubjectClaim names the caller (sub, or preferred_username).
	SubjectClaim string
	// DevicesClaim holds the device ids a device token is bound to.
	DevicesClaim string
	// TokenFile is a YAML file of hashed static tokens (tokens.go).
	TokenFile string
	// Insecure serves without authentication: every caller is admin.
	Insecure bool
	// Metrics says who may read /metrics: open, admin or off.
	Metrics string
	// Issued are tokens held in memory only (token → principal): the ones
	// `monitorme dev` makes for its run. Not a flag.
	Issued map[string]Principal
}

// DefaultConfig returns the defaults the flag help names.
func DefaultConfig() Config {
	return Config{Algorithms: []string{"RS256", "ES256"}, RolesClaim: "roles", SubjectClaim: "sub", DevicesClaim: "devices", Metrics: MetricsOpen}
}

// Who may read /metrics.
const (
	MetricsOpen  = "open"
	MetricsAdmin = "admin"
	MetricsOff   = "off"
)

// RegisterFlags binds c to flags.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Issuer, "auth-issuer", c.Issuer, "OIDC issuer URL: API callers present JWTs it signed (iss must match)")
	fs.StringVar(&c.Audience, "auth-audience", c.Audience, "audience the JWTs must be issued for (aud); required with --auth-issuer")
	fs.StringVar(&c.JWKSURL, "auth-jwks-url", c.JWKSURL, "URL of the issuer's signing keys (JWKS); default: from the issuer's discovery document")
	fs.StringVar(&c.CAFile, "auth-ca-file", c.CAFile, "PEM CA bundle for the issuer's TLS certificate, beside the system roots")
	fs.StringSliceVar(&c.Algorithms, "auth-algorithms", c.Algorithms, "JWT signature algorithms accepted (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA)")
	fs.StringVar(&c.RolesClaim, "auth-roles-claim", c.RolesClaim, "JWT claim holding the roles (device, clinician, analyst, admin); a dotted path such as realm_access.roles")
	fs.StringVar(&c.SubjectClaim, "auth-subject-claim", c.SubjectClaim, "JWT claim naming the caller, recorded on acknowledgements (sub, preferred_username, ...)")
	fs.StringVar(&c.DevicesClaim, "auth-devices-claim", c.DevicesClaim, "JWT claim listing the device ids a device token may post readings of (absent: any)")
	fs.StringVar(&c.TokenFile, "auth-token-file", c.TokenFile, "YAML file of hashed static tokens (monitorme token create), for sites without an identity provider; read again when it changes")
	fs.BoolVar(&c.Insecure, "insecure", c.Insecure, "serve the API without authentication: anyone who reaches it may do anything (never on a hospital network)")
	fs.StringVar(&c.Metrics, "metrics-access", c.Metrics, "who may read /metrics: open (no token; it holds no patient data), admin (an admin token) or off")
}

var jwtAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Validate names every setting that is wrong.
func (c *Config) Validate() error {
	var errs []error
	if c.Issuer == "" && c.TokenFile == "" && len(c.Issued) == 0 && !c.Insecure {
		errs = append(errs, errors.New("no API authentication configured: give --auth-issuer and --auth-audience (OIDC), or --auth-token-file (monitorme token create), or --insecure to serve without (never on a hospital network)"))
	}
	if c.Insecure && (c.Issuer != "" || c.TokenFile != "" || len(c.Issued) > 0) {
		errs = append(errs, errors.New("insecure: cannot be combined with --auth-issuer or --auth-token-file"))
	}
	if c.Issuer != "" {
		if !strings.HasPrefix(c.Issuer, "https://") && !strings.HasPrefix(c.Issuer, "http://") {
			errs = append(errs, fmt.Errorf("auth-issuer: %q is not an http(s) URL", c.Issuer))
		}
		if c.Audience == "" {
			errs = append(errs, errors.New("auth-audience: required with --auth-issuer (the client id tokens are issued for)"))
		}
		if len(c.Algorithms) == 0 {
			errs = append(errs, errors.New("auth-algorithms: give at least one"))
		}
		for _, a := range c.Algorithms {
			if !slices.Contains(jwtAlgorithms, a) {
				errs = append(errs, fmt.Errorf("auth-algorithms: %q is not accepted (none and the shared-secret HS* never are); want some of %s", a, strings.Join(jwtAlgorithms, ", ")))
			}
		}
		for name, v := range map[string]string{"auth-roles-claim": c.RolesClaim, "auth-subject-claim": c.SubjectClaim, "auth-devices-claim": c.DevicesClaim} {
			if v == "" {
				errs = append(errs, errors.New(name+": must not be empty"))
			}
		}
	} else if c.Audience != "" || c.JWKSURL != "" {
		errs = append(errs, errors.New("auth-audience and auth-jwks-url: need --auth-issuer"))
	}
	if c.TokenFile != "" {
		// Read now, so a missing or broken file is a usage error at start.
		if _, err := ReadTokenFile(c.TokenFile); err != nil {
			errs = append(errs, err)
		}
	}
	if c.CAFile != "" {
		if _, err := issuerClient(c.CAFile); err != nil {
			errs = append(errs, err)
		}
	}
	switch c.Metrics {
	case MetricsOpen, MetricsAdmin, MetricsOff:
	default:
		errs = append(errs, fmt.Errorf("metrics-access: %q, want open, admin or off", c.Metrics))
	}
	return errors.Join(errs...)
}
