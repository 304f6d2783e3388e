package auth

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/monitorme/monitorme/internal/web"
)

// Rule is who may call one route. Public routes need no token; a rule
// with no roles admits every authenticated caller; admin passes every
// rule.
type Rule struct {
	Method, Path string
	Roles        []Role
	Public       bool
}

// Policy is every route MonitorMe serves and who may call it. The OpenAPI
// document's x-roles and the routes the roles register are tested
// against it.
var Policy = []Rule{
	{Method: http.MethodGet, Path: "/healthz", Public: true},
	{Method: http.MethodGet, Path: "/readyz", Public: true},
	// The station page: files only, its data come from the routes below.
	{Method: http.MethodGet, Path: "/", Public: true},
	{Method: http.MethodGet, Path: "/station/*", Public: true},
	// /metrics follows Config.Metrics.
	{Method: http.MethodGet, Path: "/metrics", Roles: []Role{Admin}},
	{Method: http.MethodPost, Path: "/v1/vitals", Roles: []Role{Device}},
	{Method: http.MethodGet, Path: "/v1/openapi.json"},
	{Method: http.MethodGet, Path: "/v1/schemas/:name"},
	{Method: http.MethodGet, Path: "/v1/whoami"},
	{Method: http.MethodPost, Path: "/v1/session"},
	{Method: http.MethodDelete, Path: "/v1/session", Public: true},
	{Method: http.MethodGet, Path: "/v1/patients", Roles: []Role{Clinician}},
	{Method: http.MethodGet, Path: "/v1/patients/:id/vitals/latest", Roles: []Role{Clinician}},
	{Method: http.MethodGet, Path: "/v1/patients/:id/vitals", Roles: []Role{Clinician, Analyst}},
	{Method: http.MethodGet, Path: "/v1/patients/:id/alerts", Roles: []Role{Clinician, Analyst}},
	{Method: http.MethodGet, Path: "/v1/patients/:id/rules", Roles: []Role{Admin}},
	{Method: http.MethodGet, Path: "/v1/alerts", Roles: []Role{Clinician}},
	{Method: http.MethodPost, Path: "/v1/alerts/:id/ack", Roles: []Role{Clinician}},
	{Method: http.MethodPost, Path: "/v1/patients/:id/silence", Roles: []Role{Clinician}},
	{Method: http.MethodGet, Path: "/v1/alarms/summary", Roles: []Role{Analyst}},
	{Method: http.MethodGet, Path: "/v1/alarms", Roles: []Role{Clinician}},
	{Method: http.MethodGet, Path: "/v1/stream", Roles: []Role{Clinician}},
	{Method: http.MethodGet, Path: "/v1/wards", Roles: []Role{Clinician}},
	{Method: http.MethodPost, Path: "/v1/patients/:id/placement", Roles: []Role{ADT}},
	{Method: http.MethodGet, Path: "/v1/patients/:id/export", Roles: []Role{Clinician}},
}

// Lookup returns the rule of a route (its pattern, as echo names it).
func Lookup(method, path string) (Rule, bool) {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	i := slices.IndexFunc(Policy, func(r Rule) bool { return r.Method == method && r.Path == path })
	if i < 0 {
		return Rule{}, false
	}
	return Policy[i], true
}

// SessionCookie carries a token for the routes a browser reads without
// being able to set a header: EventSource (the live stream) cannot. It is
// accepted on GET and HEAD only, so a cross-site form can never act with
// it, and it is HttpOnly and SameSite=Strict.
const SessionCookie = "monitorme_session"

// maxSession bounds a cookie's life when the token does not expire (a
// static token): a station that is left logged in asks again daily.
const maxSession = 12 * time.Hour

// token returns the request's bearer token, and whether it came from the
// session cookie.
func token(c echo.Context) (string, bool, error) {
	r := c.Request()
	if h := r.Header.Get(echo.HeaderAuthorization); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return "", false, errors.New("the Authorization header is not \"Bearer <token>\"")
		}
		return strings.TrimSpace(tok), false, nil
	}
	if ck, err := r.Cookie(SessionCookie); err == nil && ck.Value != "" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return "", true, errors.New("the session cookie is accepted on GET only (so no other site can act with it); send Authorization: Bearer <token>")
		}
		return ck.Value, true, nil
	}
	return "", false, nil
}

func unauthorized(detail string, invalid bool) *web.Problem {
	p := web.NewProblem(http.StatusUnauthorized, detail)
	p.Title = "Authentication required"
	p.Header = http.Header{}
	v := `Bearer realm="monitorme"`
	if invalid {
		v += `, error="invalid_token"`
	}
	p.Header.Set(echo.HeaderWWWAuthenticate, v)
	return p
}

func forbidden(detail string) *web.Problem {
	p := web.NewProblem(http.StatusForbidden, detail)
	p.Title = "Not allowed"
	return p
}

func roleNames(rs []Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// Middleware authenticates every request but the public routes' and
// admits it if the route's rule allows one of the caller's roles.
func (a *Authenticator) Middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			method, path := c.Request().Method, c.Path()
			rule, known := Lookup(method, path)
			if path == "/metrics" {
				switch a.cfg.Metrics {
				case MetricsOpen:
					return next(c)
				case MetricsOff:
					return web.NewProblem(http.StatusNotFound, "/metrics is off on this server (--metrics-access=off)")
				}
			}
			if known && rule.Public {
				return next(c)
			}
			if !known && path != "" && path != "/*" && public(path) {
				// Another method on a public path (TRACE /healthz):
				// echo's 405 hides nothing a caller without a token
				// may not know, and says what is allowed.
				return next(c)
			}
			tok, _, err := token(c)
			if err != nil {
				return unauthorized(err.Error(), false)
			}
			p, err := a.Authenticate(c.Request().Context(), tok)
			switch {
			case errors.Is(err, errNoToken):
				return unauthorized("this route needs a token: send Authorization: Bearer <token>", false)
			case err != nil:
				return unauthorized(err.Error(), true)
			}
			setPrincipal(c, p)
			if !known {
				// No route matched (404, 405) or a route nobody put in
				// the policy: only an admin gets past, to learn which.
				if path == "" || path == "/*" || p.Has(Admin) {
					return next(c)
				}
				return forbidden(method + " " + c.Request().URL.Path + " is for admin only")
			}
			if len(p.Roles) == 0 {
				return forbidden("subject " + p.Subject + " has no MonitorMe role (want device, clinician, analyst or admin in the token's roles)")
			}
			if len(rule.Roles) > 0 && !slices.ContainsFunc(rule.Roles, p.Has) {
				return forbidden(method + " " + path + " needs role " + roleNames(append(slices.Clone(rule.Roles), Admin)) +
					"; subject " + p.Subject + " has " + roleNames(p.Roles))
			}
			return next(c)
		}
	}
}

// public says path has a public route for some method.
func public(path string) bool {
	for _, r := range Policy {
		if r.Path == path && r.Public {
			return true
		}
	}
	return false
}

// Register adds the session routes: who am I, and the cookie a browser's
// live stream needs.
func (a *Authenticator) Register(e *echo.Echo) {
	e.GET("/v1/whoami", func(c echo.Context) error {
		p, _ := FromContext(c)
		return c.JSON(http.StatusOK, whoami(p))
	})
	e.POST("/v1/session", func(c echo.Context) error {
		p, _ := FromContext(c)
		tok, fromCookie, _ := token(c)
		if fromCookie || tok == "" {
			return unauthorized("POST /v1/session takes the token from Authorization: Bearer <token>", false)
		}
		age := maxSession
		if !p.Expiry.IsZero() {
			age = min(age, time.Until(p.Expiry))
		}
		c.SetCookie(&http.Cookie{Name: SessionCookie, Value: tok, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
			Secure: c.IsTLS() || c.Request().Header.Get(echo.HeaderXForwardedProto) == "https", MaxAge: int(age / time.Second)})
		return c.JSON(http.StatusOK, whoami(p))
	})
	e.DELETE("/v1/session", func(c echo.Context) error {
		c.SetCookie(&http.Cookie{Name: SessionCookie, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
		return c.NoContent(http.StatusNoContent)
	})
}

func whoami(p Principal) map[string]any {
	out := map[string]any{"subject": p.Subject, "roles": p.Roles, "method": p.Method}
	if p.Devices != nil {
		out["devices"] = p.Devices
	}
	if !p.Expiry.IsZero() {
		out["expires"] = p.Expiry.UTC()
	}
	return out
}
