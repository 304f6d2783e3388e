package auth

// Static tokens, for sites without an identity provider: a YAML file of
// SHA-256 hashes of opaque tokens, each with its subject and roles. The
// file never holds a token, so reading it (a ConfigMap, a backup) gives
// nobody access; `monitorme token create` makes a token, prints it once
// and appends its hash. The file is read again when it changes, so a token
// is added or revoked without a restart.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// TokenPrefix starts every token MonitorMe makes, so a secret scanner
// (and a person) recognizes one.
const TokenPrefix = "mm_"

// NewToken returns a new random token: 256 bits.
func NewToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// Hash is what the token file stores of a token.
func Hash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// TokenEntry is one token of the file.
type TokenEntry struct {
	Subject string   `yaml:"subject"`
	Roles   []string `yaml:"roles"`
	// Devices, when given, bind a device token to these device ids.
	Devices []string `yaml:"devices,omitempty"`
	SHA256  string   `yaml:"sha256"`
}

type tokenFile struct {
	Tokens []TokenEntry `yaml:"tokens"`
}

func (e TokenEntry) principal() (Principal, error) {
	p := Principal{Subject: e.Subject, Devices: e.Devices, Method: "token"}
	if e.Subject == "" || strings.ContainsAny(e.Subject, " \t\r\n") || len(e.Subject) > 128 {
		return p, fmt.Errorf("subject %q: want 1 to 128 characters without spaces", e.Subject)
	}
	if len(e.Roles) == 0 {
		return p, fmt.Errorf("subject %s: no roles (want some of device, clinician, analyst, admin)", e.Subject)
	}
	for _, r := range e.Roles {
		role, err := ParseRole(r)
		if err != nil {
			return p, fmt.Errorf("subject %s: %w", e.Subject, err)
		}
		p.Roles = append(p.Roles, role)
	}
	if b, err := hex.DecodeString(e.SHA256); err != nil || len(b) != sha256.Size || e.SHA256 != strings.ToLower(e.SHA256) {
		return p, fmt.Errorf("subject %s: sha256 is not 64 lowercase hex digits (the hash monitorme token create prints, never the token)", e.Subject)
	}
	return p, nil
}

// ReadTokenFile reads and checks a token file: hash to principal.
func ReadTokenFile(path string) (map[string]Principal, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth-token-file: %w", err)
	}
	var f tokenFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("auth-token-file %s: %w", path, err)
	}
	out := make(map[string]Principal, len(f.Tokens))
	for i, e := range f.Tokens {
		p, err := e.principal()
		if err != nil {
			return nil, fmt.Errorf("auth-token-file %s: token %d: %w", path, i+1, err)
		}
		if _, dup := out[e.SHA256]; dup {
			return nil, fmt.Errorf("auth-token-file %s: token %d (subject %s): the same hash is listed twice", path, i+1, e.Subject)
		}
		out[e.SHA256] = p
	}
	return out, nil
}

// AppendToken adds e to the token file at path, creating it (mode 0600)
// if missing. The file is replaced whole (write, then rename), so a
// server reading it never sees half of it.
func AppendToken(path string, e TokenEntry) error {
	var f tokenFile
	if b, err := os.ReadFile(path); err == nil {
		if err := yaml.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if _, err := e.principal(); err != nil {
		return err
	}
	f.Tokens = append(f.Tokens, e)
	b, err := yaml.Marshal(f)
	if err != nil {
		return err
	}
	b = append([]byte("# MonitorMe API tokens: SHA-256 hashes only (monitorme token create).\n"), b...)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tokens-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// tokenStore answers which principal a static token is: the file's
// tokens, read again at most every check when its modification time
// changed, and the in-memory ones (dev's).
type tokenStore struct {
	path  string
	check time.Duration
	extra map[string]Principal

	mu      sync.Mutex
	tokens  map[string]Principal
	mod     time.Time
	checked time.Time
	// lastErr is the reload failure last reported, so one bad edit is
	// logged once, not on every request.
	lastErr string
	onError func(error)
}

func newTokenStore(path string, extra map[string]Principal, onError func(error)) (*tokenStore, error) {
	s := &tokenStore{path: path, check: 5 * time.Second, extra: extra, onError: onError}
	if path == "" {
		return s, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("auth-token-file: %w", err)
	}
	if s.tokens, err = ReadTokenFile(path); err != nil {
		return nil, err
	}
	s.mod, s.checked = fi.ModTime(), time.Now()
	return s, nil
}

func (s *tokenStore) lookup(token string) (Principal, bool) {
	h := Hash(token)
	if p, ok := s.extra[h]; ok {
		return p, true
	}
	if s.path == "" {
		return Principal{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := time.Now(); now.Sub(s.checked) >= s.check {
		s.checked = now
		s.reload()
	}
	p, ok := s.tokens[h]
	return p, ok
}

// reload reads the file again if it changed. A file that fails to read
// keeps the tokens in force: a half-saved edit must not lock every nurse
// station out.
func (s *tokenStore) reload() {
	fi, err := os.Stat(s.path)
	if err == nil && fi.ModTime().Equal(s.mod) {
		return
	}
	var tokens map[string]Principal
	if err == nil {
		tokens, err = ReadTokenFile(s.path)
	}
	if err != nil {
		if err.Error() != s.lastErr && s.onError != nil {
			s.onError(err)
		}
		s.lastErr = err.Error()
		return
	}
	s.tokens, s.mod, s.lastErr = tokens, fi.ModTime(), ""
}
