package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/monitorme/monitorme/schemas"
)

// The OpenAPI document is the contract, held to in both directions. It
// is built once from openapi.json with the message schemas of schemas/
// inlined as its components (Reading, Alert, Placement), so that the
// per-kind units and ranges a device is held to are in the document a
// client is generated from, not behind a link no generator follows. And
// every request is checked against it before a handler sees it: its
// query, path and header parameters and its small JSON bodies. A request
// the document forbids is refused, named by field, whatever a handler
// would have made of it (before, an empty ?patient= read as no filter
// and {"by": ""} as no by, both outside the document). The handlers'
// own limits are all in the document too (api/contract/run.sh holds the
// server to that with schemathesis).

var (
	docOnce  sync.Once
	docBytes []byte
	docErr   error
)

// OpenAPI returns the OpenAPI document of the whole MonitorMe HTTP API.
func OpenAPI() []byte {
	docOnce.Do(func() { docBytes, docErr = buildOpenAPI() })
	if docErr != nil {
		panic(docErr) // the embedded files are wrong: a test fails on it
	}
	return docBytes
}

// inlined are the message schemas the document takes as components.
var inlined = map[string]string{
	"Reading":   schemas.ReadingV1 + ".schema.json",
	"Alert":     schemas.AlertV1 + ".schema.json",
	"Placement": schemas.ADTV1 + ".schema.json",
}

func buildOpenAPI() ([]byte, error) {
	raw, err := openAPI.ReadFile("openapi.json")
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	comps := doc["components"].(map[string]any)["schemas"].(map[string]any)
	refs := map[string]string{"#/$defs/id": "#/components/schemas/Id"}
	for name, file := range inlined {
		refs[file] = "#/components/schemas/" + name
		refs["https://monitorme.example/schemas/"+file] = "#/components/schemas/" + name
	}
	for _, name := range slices.Sorted(maps.Keys(inlined)) {
		b, err := schemas.Files.ReadFile(inlined[name])
		if err != nil {
			return nil, err
		}
		var s map[string]any
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("%s: %w", inlined[name], err)
		}
		delete(s, "$schema")
		delete(s, "$id")
		delete(s, "$defs")
		s["description"] = s["title"].(string) + " (" + inlined[name] + "). " + s["description"].(string)
		delete(s, "title")
		comps[name] = s
	}
	// An open alarm (GET /v1/alarms) is an alert event and three more
	// members: the alert schema is closed (additionalProperties false),
	// so the row is its own schema, made from it.
	row := deepCopy(comps["Alert"]).(map[string]any)
	rp := row["properties"].(map[string]any)
	rp["raised_at"] = map[string]any{"type": "string", "format": "date-time", "description": "when the alert was raised: its first event's time"}
	rp["ward"] = map[string]any{"type": "string", "description": "the ward the patient is in now (the latest placement; a patient never placed or discharged: the ward of the alert's latest event), \"\" for none"}
	rp["bed"] = map[string]any{"type": "string", "description": "the bed the patient is in now, \"\" for none"}
	row["required"] = append(row["required"].([]any), "raised_at", "ward", "bed")
	row["description"] = "An open alarm: the latest event of an alert still open (alert-event.v1), when it was raised, and where the patient is now."
	comps["OpenAlarm"] = row
	rewriteRefs(doc, refs)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func deepCopy(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

// rewriteRefs points the schema files' references at the components.
func rewriteRefs(v any, refs map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		if r, ok := v["$ref"].(string); ok {
			if to, ok := refs[r]; ok {
				v["$ref"] = to
			}
		}
		for _, x := range v {
			rewriteRefs(x, refs)
		}
	case []any:
		for _, x := range v {
			rewriteRefs(x, refs)
		}
	}
}

// param is one documented parameter of an operation.
type param struct {
	name, in string
	required bool
	// typ is the schema's type: a query value is text, read as a number
	// or a boolean before it is checked when the schema says so.
	typ    string
	schema *jsonschema.Schema
	// want is how the document words a good value: its description, or
	// the enum's values.
	want string
}

// operation is what the document says of one route's requests.
type operation struct {
	params []param
	// body is the schema of an application/json body checked here (nil:
	// none, or one its handler reads itself, as the readings' batches).
	body *jsonschema.Schema
}

// contract holds the compiled operations by method and echo path
// ("GET /v1/patients/:id"), so a request finds its own without rewriting
// its route's path.
type contract struct {
	ops map[string]*operation
}

var (
	contractOnce sync.Once
	theContract  *contract
	contractErr  error
)

// checkedBodies are the operations whose JSON body is checked here; the
// readings' batches are checked by the ingest's own decoders (fast and
// slow paths, fuzzed against each other), which hold them to the same
// schema.
var checkedBodies = map[string]bool{
	"POST /v1/alerts/{id}/ack":         true,
	"POST /v1/patients/{id}/silence":   true,
	"POST /v1/patients/{id}/placement": true,
}

func loadContract() (*contract, error) {
	contractOnce.Do(func() { theContract, contractErr = compileContract(OpenAPI()) })
	return theContract, contractErr
}

func compileContract(b []byte) (*contract, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	const base = "https://monitorme.example/openapi.json"
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(base, doc); err != nil {
		return nil, err
	}
	var d struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name        string         `json:"name"`
				In          string         `json:"in"`
				Required    bool           `json:"required"`
				Description string         `json:"description"`
				Schema      map[string]any `json:"schema"`
			} `json:"parameters"`
			RequestBody struct {
				Content map[string]json.RawMessage `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	ct := &contract{ops: map[string]*operation{}}
	esc := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1") }
	for path, methods := range d.Paths {
		for method, op := range methods {
			o := &operation{}
			key := strings.ToUpper(method) + " " + path
			for i, p := range op.Parameters {
				loc := fmt.Sprintf("%s#/paths/%s/%s/parameters/%d/schema", base, esc(path), method, i)
				s, err := c.Compile(loc)
				if err != nil {
					return nil, fmt.Errorf("%s parameter %s: %w", key, p.Name, err)
				}
				typ, _ := p.Schema["type"].(string)
				if ref, ok := p.Schema["$ref"].(string); ok {
					typ, _ = d.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]["type"].(string)
				}
				want := p.Description
				if enum, ok := p.Schema["enum"].([]any); ok {
					want = "one of " + strings.Trim(strings.ReplaceAll(fmt.Sprint(enum), " ", ", "), "[]")
				}
				o.params = append(o.params, param{name: p.Name, in: p.In, required: p.Required, typ: typ, schema: s, want: want})
			}
			if _, ok := op.RequestBody.Content["application/json"]; ok && checkedBodies[key] {
				loc := fmt.Sprintf("%s#/paths/%s/%s/requestBody/content/application~1json/schema", base, esc(path), method)
				if o.body, err = c.Compile(loc); err != nil {
					return nil, fmt.Errorf("%s body: %w", key, err)
				}
			}
			ct.ops[strings.ToUpper(method)+" "+echoPath(path)] = o
		}
	}
	return ct, nil
}

// echoPath turns the document's path (/v1/patients/{id}) into echo's
// route path (/v1/patients/:id).
func echoPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			parts[i] = ":" + s[1:len(s)-1]
		}
	}
	return strings.Join(parts, "/")
}

// Contract is middleware that refuses, with a 400 naming each field, a
// request the OpenAPI document forbids.
func Contract() echo.MiddlewareFunc {
	ct, err := loadContract()
	if err != nil {
		panic(err)
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			op := ct.ops[c.Request().Method+" "+c.Path()]
			if op == nil {
				return next(c)
			}
			if problems := op.check(c); len(problems) > 0 {
				return fieldProblem("Request outside the API's contract", problems)
			}
			return next(c)
		}
	}
}

func (o *operation) check(c echo.Context) []schemas.FieldError {
	var problems []schemas.FieldError
	q := c.QueryParams()
	for _, p := range o.params {
		var v string
		var given bool
		switch p.in {
		case "query":
			var vs []string
			vs, given = q[p.name]
			if given {
				v = vs[0]
			}
		case "path":
			u, err := pathValue(c, p.name)
			if err != nil {
				problems = append(problems, schemas.FieldError{Field: p.name, Reason: err.Error()})
				continue
			}
			v, given = u, true
		case "header":
			vs := c.Request().Header.Values(p.name)
			given = len(vs) > 0
			if given {
				v = vs[0]
			}
		default:
			continue
		}
		if !given {
			if p.required {
				problems = append(problems, schemas.FieldError{Field: p.name, Reason: "is required"})
			}
			continue
		}
		if msg := p.valid(v); msg != "" {
			problems = append(problems, schemas.FieldError{Field: p.name, Reason: msg})
		}
	}
	if o.body != nil {
		if msg := o.checkBody(c); msg != "" {
			problems = append(problems, schemas.FieldError{Field: "body", Reason: msg})
		}
	}
	return problems
}

// valid checks one parameter's text as the document's schema reads it.
func (p param) valid(v string) string {
	var x any = v
	switch p.typ {
	case "integer", "number":
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || strings.TrimSpace(v) != v {
			return "is not a number: " + schemas.Quote(v)
		}
		x = json.Number(strconv.FormatFloat(f, 'f', -1, 64))
	case "boolean":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return "is not true or false: " + schemas.Quote(v)
		}
		x = b
	}
	if err := p.schema.Validate(x); err != nil {
		if p.typ == "string" && strings.Contains(err.Error(), "date-time") {
			return "is not an RFC 3339 time such as 2026-12-01T09:00:00Z: " + schemas.Quote(v)
		}
		msg := "is not allowed: " + schemas.Quote(v)
		if p.want != "" {
			msg += "; want " + strings.TrimSuffix(p.want, ".")
		} else {
			msg += " (" + reason(err, "") + ")"
		}
		return msg
	}
	return ""
}

// checkBody checks a small JSON body and puts it back for the handler;
// no body is an empty object (every field of these is optional or
// checked by the handler with its own words), and a body that is not
// JSON is the handler's to name.
func (o *operation) checkBody(c echo.Context) string {
	req := c.Request()
	b, err := io.ReadAll(io.LimitReader(req.Body, maxAckBody+1))
	if err != nil {
		return "" // the handler reads the body again and says so
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	if len(bytes.TrimSpace(b)) == 0 || len(b) > maxAckBody || !strings.HasPrefix(req.Header.Get(echo.HeaderContentType), echo.MIMEApplicationJSON) {
		return ""
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return ""
	}
	if err := o.body.Validate(v); err != nil {
		return reason(err, "")
	}
	return ""
}

// reason words a validation error as one line: the deepest causes, each
// with where in the value it is.
func reason(err error, value string) string {
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return err.Error()
	}
	var leaves []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			msg := e.ErrorKind.LocalizedString(english)
			if at := strings.Join(e.InstanceLocation, "/"); at != "" {
				msg = at + ": " + msg
			}
			leaves = append(leaves, msg)
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	slices.Sort(leaves)
	out := strings.Join(slices.Compact(leaves), "; ")
	if value != "" {
		out += " (got " + value + ")"
	}
	return out
}

var english = message.NewPrinter(language.English)
