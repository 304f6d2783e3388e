package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/labstack/echo/v4"

	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/internal/web"
)

// issuer is a test identity provider: a JWKS endpoint whose keys a test
// can rotate, and a signer for tokens.
type issuer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	keys []jose.JSONWebKey
}

func newIssuer(t *testing.T) *issuer {
	is := &issuer{}
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.mu.Lock()
		defer is.mu.Unlock()
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: is.keys})
	}))
	t.Cleanup(is.srv.Close)
	return is
}

// addKey publishes a new RSA key and returns a signer with it.
func (is *issuer) addKey(t *testing.T, kid string) jose.Signer {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is.mu.Lock()
	is.keys = append(is.keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"})
	is.mu.Unlock()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const testIssuer = "https://idp.hospital.example/realms/icu"

func sign(t *testing.T, s jose.Signer, claims map[string]any) string {
	t.Helper()
	base := map[string]any{"iss": testIssuer, "aud": "monitorme", "sub": "nurse-7",
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
	for k, v := range claims {
		if v == nil {
			delete(base, k)
		} else {
			base[k] = v
		}
	}
	tok, err := jwt.Signed(s).Claims(base).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// server is an echo server with the policy's routes, each answering 200
// with the caller's subject.
func server(t *testing.T, a *Authenticator) *httptest.Server {
	e := web.New(slog.New(slog.DiscardHandler), telemetry.Nop())
	e.Use(a.Middleware())
	a.Register(e)
	ok := func(c echo.Context) error {
		p, _ := FromContext(c)
		return c.String(http.StatusOK, p.Subject)
	}
	for _, r := range Policy {
		if r.Path == "/healthz" || r.Path == "/readyz" || r.Path == "/metrics" || strings.Contains(r.Path, "session") || r.Path == "/v1/whoami" {
			continue
		}
		e.Add(r.Method, r.Path, ok)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

type reply struct {
	status int
	body   string
	header http.Header
}

func call(t *testing.T, method, url, token string, mod ...func(*http.Request)) reply {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, m := range mod {
		m(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b), resp.Header}
}

func writeTokens(t *testing.T, entries ...TokenEntry) string {
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	for _, e := range entries {
		if err := AppendToken(path, e); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func TestStaticTokensAndRoles(t *testing.T) {
	nurse, gateway, analyst := NewToken(), NewToken(), NewToken()
	path := writeTokens(t,
		TokenEntry{Subject: "nurse-7", Roles: []string{"clinician"}, SHA256: Hash(nurse)},
		TokenEntry{Subject: "gw-icu", Roles: []string{"device"}, Devices: []string{"mon-1"}, SHA256: Hash(gateway)},
		TokenEntry{Subject: "ana", Roles: []string{"analyst"}, SHA256: Hash(analyst)})
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), nurse) {
		t.Fatal("the token file holds a token, not its hash")
	}
	cfg := DefaultConfig()
	cfg.TokenFile = path
	a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := server(t, a)
	u := srv.URL

	for _, tc := range []struct {
		name, method, path, token string
		want                      int
		contains                  string
	}{
		{"no token", "GET", "/v1/patients", "", 401, "needs a token"},
		{"unknown token", "GET", "/v1/patients", NewToken(), 401, "not a token this server knows"},
		{"public health", "GET", "/healthz", "", 200, "ok"},
		{"public ready", "GET", "/readyz", "", 200, "ready"},
		{"clinician reads patients", "GET", "/v1/patients", nurse, 200, "nurse-7"},
		{"clinician acknowledges", "POST", "/v1/alerts/0123/ack", nurse, 200, "nurse-7"},
		{"clinician may not post readings", "POST", "/v1/vitals", nurse, 403, "needs role device, admin; subject nurse-7 has clinician"},
		{"clinician may not read rules", "GET", "/v1/patients/P1/rules", nurse, 403, "needs role admin"},
		{"device posts readings", "POST", "/v1/vitals", gateway, 200, "gw-icu"},
		{"device may not read vitals", "GET", "/v1/patients/P1/vitals/latest", gateway, 403, "needs role clinician, admin; subject gw-icu has device"},
		{"device may not stream", "GET", "/v1/stream", gateway, 403, "needs role clinician"},
		{"analyst reads history", "GET", "/v1/patients/P1/vitals", analyst, 200, "ana"},
		{"analyst reads the summary", "GET", "/v1/alarms/summary", analyst, 200, "ana"},
		{"analyst may not read live alerts", "GET", "/v1/alerts", analyst, 403, "needs role clinician"},
		{"analyst may not acknowledge", "POST", "/v1/alerts/0123/ack", analyst, 403, "needs role clinician"},
		{"any role reads the OpenAPI document", "GET", "/v1/openapi.json", gateway, 200, "gw-icu"},
		{"an unknown route is 404 to a caller", "GET", "/v1/nothing", nurse, 404, "no such endpoint"},
		{"an unknown route is 401 to nobody", "GET", "/v1/nothing", "", 401, "needs a token"},
	} {
		r := call(t, tc.method, u+tc.path, tc.token)
		if r.status != tc.want || !strings.Contains(r.body, tc.contains) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, r.status, r.body, tc.want, tc.contains)
		}
		if r.status == 401 {
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), `Bearer realm="monitorme"`) || r.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s: 401 without a Bearer challenge or problem document: %v", tc.name, r.header)
			}
		}
		if r.status == 403 && r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: 403 is not a problem document", tc.name)
		}
	}
	if r := call(t, "GET", u+"/v1/patients", "", func(r *http.Request) { r.Header.Set("Authorization", "Basic bnVyc2U6cHc=") }); r.status != 401 || !strings.Contains(r.body, "is not \\\"Bearer") {
		t.Errorf("basic auth: %d %s", r.status, r.body)
	}
}

func TestTokenFileIsReadAgainWhenItChanges(t *testing.T) {
	first, second := NewToken(), NewToken()
	path := writeTokens(t, TokenEntry{Subject: "a", Roles: []string{"admin"}, SHA256: Hash(first)})
	var logged []error
	s, err := newTokenStore(path, nil, func(err error) { logged = append(logged, err) })
	if err != nil {
		t.Fatal(err)
	}
	s.check = 0
	if _, ok := s.lookup(second); ok {
		t.Fatal("a token not in the file was accepted")
	}
	if err := AppendToken(path, TokenEntry{Subject: "b", Roles: []string{"clinician"}, SHA256: Hash(second)}); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Minute)
	os.Chtimes(path, future, future)
	if p, ok := s.lookup(second); !ok || p.Subject != "b" {
		t.Fatalf("the token added to the file: %v %v", p, ok)
	}
	// A broken edit keeps the tokens in force, and is reported once.
	os.WriteFile(path, []byte("tokens: [oops"), 0o600)
	future = future.Add(time.Minute)
	os.Chtimes(path, future, future)
	for range 3 {
		if _, ok := s.lookup(first); !ok {
			t.Fatal("a broken token file revoked every token")
		}
	}
	if len(logged) != 1 {
		t.Errorf("the broken file was reported %d times, want once", len(logged))
	}
}

func TestTokenFileRefusesWhatIsWrong(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"tokens:\n- subject: a\n  roles: [admin]\n  sha256: mm_notahash\n", "never the token"},
		{"tokens:\n- subject: a\n  roles: [root]\n  sha256: " + Hash("x") + "\n", `role "root"`},
		{"tokens:\n- subject: a\n  sha256: " + Hash("x") + "\n", "no roles"},
		{"tokens:\n- subject: a\n  roles: [admin]\n  sha256: " + Hash("x") + "\n- subject: b\n  roles: [admin]\n  sha256: " + Hash("x") + "\n", "twice"},
		{"tokens:\n- subject: a\n  role: [admin]\n", "field role not found"},
	} {
		path := filepath.Join(t.TempDir(), "t.yaml")
		os.WriteFile(path, []byte(tc.body), 0o600)
		if _, err := ReadTokenFile(path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.body, err, tc.want)
		}
	}
}

func TestOIDCTokens(t *testing.T) {
	is := newIssuer(t)
	k1 := is.addKey(t, "k1")
	cfg := DefaultConfig()
	cfg.Issuer, cfg.Audience, cfg.JWKSURL, cfg.RolesClaim = testIssuer, "monitorme", is.srv.URL, "realm_access.roles"
	a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	u := server(t, a).URL + "/v1/patients"
	roles := map[string]any{"roles": []string{"clinician", "offline_access"}}

	hs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, nil)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	es, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: ecKey, KeyID: "k1"}}, nil)
	for _, tc := range []struct {
		name     string
		token    string
		want     int
		contains string
	}{
		{"valid", sign(t, k1, map[string]any{"realm_access": roles}), 200, "nurse-7"},
		{"roles as a space-separated string", sign(t, k1, map[string]any{"realm_access": map[string]any{"roles": "clinician analyst"}}), 200, "nurse-7"},
		{"expired", sign(t, k1, map[string]any{"realm_access": roles, "exp": time.Now().Add(-time.Minute).Unix()}), 401, "expired"},
		{"no expiry", sign(t, k1, map[string]any{"realm_access": roles, "exp": nil}), 401, "expired"},
		{"another audience", sign(t, k1, map[string]any{"realm_access": roles, "aud": "billing"}), 401, "audience"},
		{"another issuer", sign(t, k1, map[string]any{"realm_access": roles, "iss": "https://evil.example"}), 401, "different provider"},
		{"HS256 (a shared secret)", sign(t, hs, map[string]any{"realm_access": roles}), 401, "HS256"},
		{"a key the issuer never published", sign(t, es, map[string]any{"realm_access": roles}), 401, "invalid token"},
		{"no role", sign(t, k1, nil), 403, "no MonitorMe role"},
		{"not a clinician", sign(t, k1, map[string]any{"realm_access": map[string]any{"roles": []string{"device"}}}), 403, "needs role clinician"},
		{"no subject", sign(t, k1, map[string]any{"realm_access": roles, "sub": nil}), 401, "no sub claim"},
	} {
		r := call(t, "GET", u, tc.token)
		if r.status != tc.want || !strings.Contains(r.body, tc.contains) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, r.status, r.body, tc.want, tc.contains)
		}
	}
	// alg "none": an unsigned token.
	parts := strings.Split(sign(t, k1, map[string]any{"realm_access": roles}), ".")
	none := "eyJhbGciOiJub25lIn0." + parts[1] + "."
	if r := call(t, "GET", u, none); r.status != 401 {
		t.Errorf("alg none: %d %s", r.status, r.body)
	}

	// Key rotation: the issuer publishes a new key; a token signed with
	// it is accepted without a restart (the key set is fetched again for
	// an unknown key id).
	k2 := is.addKey(t, "k2")
	if r := call(t, "GET", u, sign(t, k2, map[string]any{"realm_access": roles})); r.status != 200 {
		t.Errorf("a token signed with a rotated-in key: %d %s", r.status, r.body)
	}
}

func TestDeviceBinding(t *testing.T) {
	is := newIssuer(t)
	k := is.addKey(t, "k")
	cfg := DefaultConfig()
	cfg.Issuer, cfg.Audience, cfg.JWKSURL = testIssuer, "monitorme", is.srv.URL
	a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	bound, err := a.Authenticate(context.Background(), sign(t, k, map[string]any{"roles": []string{"device"}, "devices": []string{"mon-1", "mon-2"}}))
	if err != nil {
		t.Fatal(err)
	}
	if !bound.MayPost("mon-2") || bound.MayPost("mon-3") {
		t.Errorf("bound to %v: mon-2 %v, mon-3 %v", bound.Devices, bound.MayPost("mon-2"), bound.MayPost("mon-3"))
	}
	free, _ := a.Authenticate(context.Background(), sign(t, k, map[string]any{"roles": []string{"device"}}))
	if !free.MayPost("anything") {
		t.Error("a device token without a devices claim is bound")
	}
	none, _ := a.Authenticate(context.Background(), sign(t, k, map[string]any{"roles": []string{"device"}, "devices": []string{}}))
	if none.MayPost("mon-1") {
		t.Error("an empty devices claim admits a device")
	}
}

func TestSessionCookieForTheBrowser(t *testing.T) {
	nurse := NewToken()
	cfg := DefaultConfig()
	cfg.TokenFile = writeTokens(t, TokenEntry{Subject: "nurse-7", Roles: []string{"clinician"}, SHA256: Hash(nurse)})
	a, _ := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	u := server(t, a).URL
	r := call(t, "POST", u+"/v1/session", nurse)
	ck := r.header.Get("Set-Cookie")
	if r.status != 200 || !strings.Contains(ck, SessionCookie+"=") || !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Strict") {
		t.Fatalf("POST /v1/session: %d %s %q", r.status, r.body, ck)
	}
	withCookie := func(r *http.Request) { r.AddCookie(&http.Cookie{Name: SessionCookie, Value: nurse}) }
	if r := call(t, "GET", u+"/v1/stream", "", withCookie); r.status != 200 || r.body != "nurse-7" {
		t.Errorf("GET /v1/stream with the cookie: %d %s", r.status, r.body)
	}
	if r := call(t, "POST", u+"/v1/alerts/0123/ack", "", withCookie); r.status != 401 || !strings.Contains(r.body, "GET only") {
		t.Errorf("POST with the cookie only: %d %s, want 401", r.status, r.body)
	}
	if r := call(t, "DELETE", u+"/v1/session", ""); r.status != 204 || !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("DELETE /v1/session: %d %v", r.status, r.header)
	}
}

func TestMetricsAccess(t *testing.T) {
	admin := NewToken()
	for _, tc := range []struct {
		setting       string
		anon, withTok int
	}{{MetricsOpen, 200, 200}, {MetricsAdmin, 401, 200}, {MetricsOff, 404, 404}} {
		cfg := DefaultConfig()
		cfg.Metrics = tc.setting
		cfg.TokenFile = writeTokens(t, TokenEntry{Subject: "ops", Roles: []string{"admin"}, SHA256: Hash(admin)})
		a, _ := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
		u := server(t, a).URL + "/metrics"
		if r := call(t, "GET", u, ""); r.status != tc.anon {
			t.Errorf("metrics-access=%s without a token: %d", tc.setting, r.status)
		}
		if r := call(t, "GET", u, admin); r.status != tc.withTok {
			t.Errorf("metrics-access=%s with an admin token: %d", tc.setting, r.status)
		}
	}
}

func TestInsecureAdmitsEveryone(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Insecure = true
	a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if r := call(t, "POST", server(t, a).URL+"/v1/vitals", ""); r.status != 200 || r.body != "anonymous" {
		t.Errorf("insecure: %d %s", r.status, r.body)
	}
}

func TestConfigRefusesWhatIsWrong(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) {}, "no API authentication configured"},
		{func(c *Config) { c.Issuer = testIssuer }, "auth-audience: required"},
		{func(c *Config) { c.Issuer, c.Audience, c.Algorithms = testIssuer, "m", []string{"HS256"} }, "HS*"},
		{func(c *Config) { c.Issuer, c.Audience, c.Algorithms = testIssuer, "m", []string{"none"} }, `"none" is not accepted`},
		{func(c *Config) { c.Issuer, c.Audience = "idp.example", "m" }, "not an http(s) URL"},
		{func(c *Config) { c.Insecure, c.TokenFile = true, "t.yaml" }, "cannot be combined"},
		{func(c *Config) { c.Insecure, c.Audience = true, "m" }, "need --auth-issuer"},
		{func(c *Config) { c.Insecure, c.Metrics = true, "public" }, "metrics-access"},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", c, err, tc.want)
		}
	}
	// An issuer whose discovery document cannot be read ends the start.
	c := DefaultConfig()
	c.Issuer, c.Audience = "http://127.0.0.1:1/realms/x", "m"
	if _, err := New(context.Background(), c, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "discovery document") {
		t.Errorf("unreachable issuer: %v", err)
	}
}
