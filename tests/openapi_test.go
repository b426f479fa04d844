package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/content"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"github.com/prometheus/client_golang/prometheus"

	"factstream/handlers"
	"factstream/hub"
	"factstream/openapi"
	"factstream/store"
	"factstream/store/memory"
)

// apiSpec is the OpenAPI document, parsed and ready to validate requests
// and responses with. It records which operations the test exercised.
type apiSpec struct {
	model     *v3.Document
	validator validator.Validator
	schemas   schema_validation.SchemaValidator
	templates []pathTemplate
	covered   map[string]bool // "GET /facts/{id}"
}

type pathTemplate struct {
	path string
	re   *regexp.Regexp
}

// parseSpec parses doc, validates it against the OpenAPI 3.1 schema and
// returns it ready for use.
func parseSpec(tb testing.TB, doc []byte) *apiSpec {
	tb.Helper()
	var head struct {
		OpenAPI string `json:"openapi"`
	}
	if err := json.Unmarshal(doc, &head); err != nil {
		tb.Fatalf("the OpenAPI document is not JSON: %v", err)
	}
	if !strings.HasPrefix(head.OpenAPI, "3.1.") {
		tb.Fatalf("openapi = %q, want 3.1.x", head.OpenAPI)
	}
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		tb.Fatalf("parse the OpenAPI document: %v", err)
	}
	m, err := d.BuildV3Model()
	if err != nil {
		tb.Fatalf("build the OpenAPI model: %v", err)
	}
	v, errs := validator.NewValidator(d,
		// The validator reads any media type with "json" in its name as
		// one JSON document; an export is lines of them, a string to the
		// document, whose lines check checks one by one.
		config.WithBodyDecoder("application/x-ndjson", content.DecoderFunc(func(in *content.DecodeInput) (any, error) {
			b, err := io.ReadAll(in.Body)
			return string(b), err
		})))
	if len(errs) > 0 {
		tb.Fatalf("OpenAPI validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		tb.Fatalf("the OpenAPI document is not valid OpenAPI 3.1:\n%s", describe(verrs))
	}
	s := &apiSpec{
		model:     &m.Model,
		validator: v,
		// Content assertions check each event's data against its
		// contentSchema, not only that it is a string.
		schemas: schema_validation.NewSchemaValidator(config.WithContentAssertions()),
		covered: map[string]bool{},
	}
	for path := range m.Model.Paths.PathItems.KeysFromOldest() {
		expr := regexp.MustCompile(`\\\{[a-z]+\\\}`).ReplaceAllString(regexp.QuoteMeta(path), `[^/]+`)
		s.templates = append(s.templates, pathTemplate{path: path, re: regexp.MustCompile("^" + expr + "$")})
	}
	return s
}

// fetchSpec gets /openapi.json from the running service and parses it.
func fetchSpec(tb testing.TB, base string) *apiSpec {
	tb.Helper()
	resp, err := http.Get(base + "/openapi.json")
	if err != nil {
		tb.Fatalf("GET /openapi.json: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET /openapi.json = %d %s", resp.StatusCode, body)
	}
	return parseSpec(tb, body)
}

// operations returns every documented operation as "METHOD /path".
func (s *apiSpec) operations() []string {
	var ops []string
	for path, item := range s.model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().KeysFromOldest() {
			ops = append(ops, strings.ToUpper(method)+" "+path)
		}
	}
	return ops
}

// operation names the documented operation a request goes to.
func (s *apiSpec) operation(method, path string) string {
	for _, t := range s.templates {
		if t.re.MatchString(path) {
			return method + " " + t.path
		}
	}
	return method + " " + path + " (undocumented)"
}

// schema returns the component schema name.
func (s *apiSpec) schema(tb testing.TB, name string) *base.Schema {
	tb.Helper()
	proxy := s.model.Components.Schemas.GetOrZero(name)
	if proxy == nil {
		tb.Fatalf("no component schema %s", name)
	}
	return proxy.Schema()
}

// validate fails unless v is valid against the component schema name.
func (s *apiSpec) validate(tb testing.TB, name string, v any) {
	tb.Helper()
	if ok, errs := s.schemas.ValidateSchemaObject(s.schema(tb, name), v); !ok {
		tb.Errorf("%s does not validate %v:\n%s", name, v, describe(errs))
	}
}

func describe(errs []*liberrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "  %s: %s\n", e.Message, e.Reason)
		for _, f := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "    %s at %s (%s)\n", f.Reason, f.FieldPath, f.KeywordLocation)
		}
	}
	return b.String()
}

// apiCall is one request to the running service and what it must answer.
type apiCall struct {
	name   string
	method string
	path   string
	header http.Header
	body   string
	status int
	// problem is the problem type's code of an error answer.
	problem string
	// invalid marks a request that breaks the document on purpose, to see
	// that the answer is a documented error; only the answer is validated.
	invalid bool
}

func (ex apiCall) request(tb testing.TB, base string) *http.Request {
	tb.Helper()
	var body io.Reader
	if ex.body != "" {
		body = strings.NewReader(ex.body)
	}
	req, err := http.NewRequest(ex.method, base+ex.path, body)
	if err != nil {
		tb.Fatal(err)
	}
	for k, vs := range ex.header {
		req.Header[k] = vs
	}
	return req
}

// check sends ex and validates the request (unless invalid on purpose) and
// the answer against the document. It returns the answer's body.
func (s *apiSpec) check(t *testing.T, base string, ex apiCall) []byte {
	t.Helper()
	if !ex.invalid {
		if ok, errs := s.validator.ValidateHttpRequestSync(ex.request(t, base)); !ok {
			t.Errorf("%s: the request does not match the document:\n%s", ex.name, describe(errs))
		}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(ex.request(t, base))
	if err != nil {
		t.Fatalf("%s: %v", ex.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: read the answer: %v", ex.name, err)
	}
	if resp.StatusCode != ex.status {
		t.Fatalf("%s: %s %s = %d %.300s, want %d", ex.name, ex.method, ex.path, resp.StatusCode, body, ex.status)
	}
	if ex.problem != "" {
		var p handlers.Problem
		if err := json.Unmarshal(body, &p); err != nil || p.Type != "urn:factstream:problem:"+ex.problem {
			t.Fatalf("%s: answer %s, want problem %s", ex.name, body, ex.problem)
		}
	}
	if resp.Header.Get("Content-Type") == "application/x-ndjson" {
		for line := range strings.Lines(string(body)) {
			var v any
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				t.Fatalf("%s: export line %q: %v", ex.name, line, err)
			}
			s.validate(t, "Fact", v)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if ok, errs := s.validator.ValidateHttpResponse(ex.request(t, base), resp); !ok {
		t.Errorf("%s: the %d answer does not match the document (headers %v, body %.300s):\n%s",
			ex.name, resp.StatusCode, resp.Header, body, describe(errs))
	}
	s.covered[s.operation(ex.method, strings.SplitN(ex.path, "?", 2)[0])] = true
	return body
}

func (s *apiSpec) checkAll(t *testing.T, base string, exs []apiCall) {
	t.Helper()
	for _, ex := range exs {
		s.check(t, base, ex)
	}
}

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

var jsonBody = header("Content-Type", "application/json")

func TestOpenAPIDocumentIsServedWithTheVersion(t *testing.T) {
	srv := startServer(t, testConfig(t))
	resp, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json = %d", resp.StatusCode)
	}
	for name, want := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-cache"} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	parseSpec(t, body)

	var doc struct {
		Info struct {
			Version string `json:"version"`
		} `json:"info"`
	}
	var status struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	getJSON(t, srv.URL+"/status", &status)
	if doc.Info.Version == "" || doc.Info.Version != status.Version {
		t.Errorf("info.version = %q, /status version = %q: want the same, not empty", doc.Info.Version, status.Version)
	}

	// Apart from the version, the served document is the embedded file.
	embedded, err := openapi.Document(doc.Info.Version)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, embedded) {
		t.Error("the served document differs from the embedded one with the same version")
	}
	other, err := openapi.Document(`1.2.3 "quoted"`)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(other, &doc); err != nil || doc.Info.Version != `1.2.3 "quoted"` {
		t.Errorf("Document(version) has info.version %q (err %v)", doc.Info.Version, err)
	}

	etag := resp.Header.Get("ETag")
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/openapi.json", nil)
	req.Header.Set("If-None-Match", etag)
	again, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if etag == "" || again.StatusCode != http.StatusNotModified {
		t.Errorf("revalidating with ETag %q = %d, want 304", etag, again.StatusCode)
	}
}

// TestOpenAPIDescribesEveryRoute keeps the document and the routes
// together: every route the engine has is documented, and every documented
// operation is a route.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc, err := openapi.Document("test")
	if err != nil {
		t.Fatal(err)
	}
	spec := parseSpec(t, doc)
	st := memory.New(store.Options{})
	defer st.Close()
	h := hub.New(hub.Options{Buffer: 16})
	defer h.Close()
	// Every optional route on: metrics need a gatherer.
	engine, ok := handlers.Routes(handlers.Deps{
		Logger:   slog.New(slog.DiscardHandler),
		Store:    st,
		Hub:      h,
		Gatherer: prometheus.NewRegistry(),
	}).(*gin.Engine)
	if !ok {
		t.Fatal("handlers.Routes no longer returns a *gin.Engine: list its routes another way")
	}
	param := regexp.MustCompile(`[:*]([A-Za-z]+)`)
	var routes []string
	for _, r := range engine.Routes() {
		routes = append(routes, r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"))
	}
	documented := spec.operations()
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in openapi/openapi.json", r)
		}
	}
	for _, op := range documented {
		if !slices.Contains(routes, op) {
			t.Errorf("openapi/openapi.json documents %s, which is not a route", op)
		}
	}
}

// TestOpenAPIAnswersMatchTheDocument sends every operation its successes
// and the errors it documents, on servers configured to produce them, and
// validates requests and answers against the served document.
func TestOpenAPIAnswersMatchTheDocument(t *testing.T) {
	open := startServer(t, testConfig(t))
	spec := fetchSpec(t, open.URL)

	t.Run("Open", func(t *testing.T) {
		checkOpenServer(t, spec, open.URL)
	})
	t.Run("Tokens", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.PublishTokens = []string{"publish-token-0123456789"}
		cfg.SubscribeTokens = []string{"subscribe-token-0123456789"}
		cfg.MetricsToken = "metrics-token-0123456789"
		cfg.CORSOrigins = []string{"https://allowed.example"}
		cfg.AdminTokens = []string{"admin-token-0123456789"}
		cfg.Store = "bolt:" + filepath.Join(t.TempDir(), "facts.db")
		srv := startServer(t, cfg)
		var victim store.Fact
		body := spec.check(t, srv.URL, apiCall{name: "PublishWithToken", method: "POST", path: "/fact", body: `{"info":"Tokens work."}`, status: 201,
			header: header("Content-Type", "application/json", "Authorization", "Bearer publish-token-0123456789")})
		if err := json.Unmarshal(body, &victim); err != nil {
			t.Fatal(err)
		}
		admin := header("Authorization", "Bearer admin-token-0123456789")
		spec.checkAll(t, srv.URL, []apiCall{
			{name: "PublishWithoutToken", method: "POST", path: "/fact", header: jsonBody, body: `{"info":"x"}`, status: 401, problem: "token-required"},
			{name: "PublishWithWrongToken", method: "POST", path: "/fact", body: `{"info":"x"}`, status: 401, problem: "token-invalid",
				header: header("Content-Type", "application/json", "Authorization", "Bearer wrong-token-0123456789")},
			{name: "BatchWithoutToken", method: "POST", path: "/facts", header: jsonBody, body: `[{"info":"x"}]`, status: 401, problem: "token-required"},
			{name: "ListWithoutToken", method: "GET", path: "/facts", status: 401, problem: "token-required"},
			{name: "ListWithQueryToken", method: "GET", path: "/facts?access_token=subscribe-token-0123456789", status: 200},
			{name: "StatusWithCookie", method: "GET", path: "/status", header: header("Cookie", "factstream_token=subscribe-token-0123456789"), status: 200},
			{name: "StatusWithoutToken", method: "GET", path: "/status", status: 401, problem: "token-required"},
			{name: "GetWithoutToken", method: "GET", path: "/facts/0192f0c4-6a2e-7c1a-9d5e-3b8c2f1e4a77", status: 401, problem: "token-required"},
			{name: "StreamWithoutToken", method: "GET", path: "/events", status: 401, problem: "token-required"},
			{name: "MetricsWithoutToken", method: "GET", path: "/metrics", status: 401, problem: "token-required"},
			{name: "MetricsWithToken", method: "GET", path: "/metrics", header: header("Authorization", "Bearer metrics-token-0123456789"), status: 200},
			{name: "OtherOrigin", method: "GET", path: "/healthz", header: header("Origin", "https://other.example"), status: 403, problem: "origin-not-allowed"},
			{name: "OtherOriginPublish", method: "POST", path: "/fact", body: `{"info":"x"}`, status: 403, problem: "origin-not-allowed",
				header: header("Content-Type", "application/json", "Origin", "https://other.example")},

			{name: "BatchWithToken", method: "POST", path: "/facts", body: `[{"info":"One."},{"info":"Two."}]`, status: 201,
				header: header("Content-Type", "application/json", "Authorization", "Bearer publish-token-0123456789")},
			{name: "Export", method: "GET", path: "/admin/export", header: admin, status: 200},
			{name: "ExportAfter", method: "GET", path: "/admin/export?after=1", header: admin, status: 200},
			{name: "ExportBadAfter", method: "GET", path: "/admin/export?after=x", header: admin, status: 400, problem: "invalid-request", invalid: true},
			{name: "ExportWithoutToken", method: "GET", path: "/admin/export", status: 401, problem: "token-required", invalid: true},
			{name: "ExportWithSubscribeToken", method: "GET", path: "/admin/export", status: 401, problem: "token-invalid",
				header: header("Authorization", "Bearer subscribe-token-0123456789")},
			{name: "Backup", method: "GET", path: "/admin/backup", header: admin, status: 200},
			{name: "BackupWithoutToken", method: "GET", path: "/admin/backup", status: 401, problem: "token-required", invalid: true},
			{name: "DeleteWithoutToken", method: "DELETE", path: "/facts/" + victim.ID, status: 401, problem: "token-required", invalid: true},
			{name: "DeleteFromOtherOrigin", method: "DELETE", path: "/facts/" + victim.ID, status: 403, problem: "origin-not-allowed",
				header: header("Authorization", "Bearer admin-token-0123456789", "Origin", "https://other.example")},
			{name: "Delete", method: "DELETE", path: "/facts/" + victim.ID, header: admin, status: 204},
			{name: "DeleteAgain", method: "DELETE", path: "/facts/" + victim.ID, header: admin, status: 404, problem: "not-found"},
			{name: "GetDeleted", method: "GET", path: "/facts/" + victim.ID, header: header("Authorization", "Bearer subscribe-token-0123456789"), status: 404, problem: "not-found"},
		})
	})
	t.Run("AdminOnMemory", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.AdminTokens = []string{"admin-token-0123456789"}
		srv := startServer(t, cfg)
		spec.check(t, srv.URL, apiCall{name: "BackupUnsupported", method: "GET", path: "/admin/backup",
			header: header("Authorization", "Bearer admin-token-0123456789"), status: 501, problem: "backup-unsupported"})
	})
	t.Run("RateLimit", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.PublishRate, cfg.PublishBurst = 0.001, 1
		srv := startServer(t, cfg)
		spec.checkAll(t, srv.URL, []apiCall{
			{name: "First", method: "POST", path: "/fact", header: jsonBody, body: `{"info":"The first is let through."}`, status: 201},
			{name: "Second", method: "POST", path: "/facts", header: jsonBody, body: `{"info":"The second waits."}`, status: 429, problem: "rate-limited"},
		})
	})
	t.Run("TooManyStreams", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.MaxClients = 1
		srv := startServer(t, cfg)
		openStream(t, srv.URL+"/events", nil)
		spec.check(t, srv.URL, apiCall{name: "SecondStream", method: "GET", path: "/events", status: 503, problem: "too-many-streams"})
	})
	t.Run("StoreUnreachable", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Store = "redis://" + freePort(t) + "/0" // nothing listens there
		srv := startServer(t, cfg)
		spec.checkAll(t, srv.URL, []apiCall{
			{name: "Readyz", method: "GET", path: "/readyz", status: 503, problem: "not-ready"},
			{name: "Publish", method: "POST", path: "/fact", header: jsonBody, body: `{"info":"Not stored."}`, status: 503, problem: "store-unavailable"},
			{name: "List", method: "GET", path: "/facts", status: 503, problem: "store-unavailable"},
		})
	})

	for _, op := range spec.operations() {
		if !spec.covered[op] {
			t.Errorf("no apiCall exercised %s: add one here", op)
		}
	}
}

func checkOpenServer(t *testing.T, spec *apiSpec, base string) {
	var created store.Fact
	body := spec.check(t, base, apiCall{name: "Publish", method: "POST", path: "/fact", status: 201,
		header: header("Content-Type", "application/json", "Idempotency-Key", "openapi-key-1"),
		body:   `{"info":"Octopuses have three hearts.","source":"https://en.wikipedia.org/wiki/Octopus"}`})
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}
	huge := `{"info":"` + strings.Repeat("x", 70_000) + `"}`
	spec.checkAll(t, base, []apiCall{
		{name: "Replay", method: "POST", path: "/fact", status: 201,
			header: header("Content-Type", "application/json", "Idempotency-Key", "openapi-key-1"),
			body:   `{"info":"Octopuses have three hearts.","source":"https://en.wikipedia.org/wiki/Octopus"}`},
		{name: "KeyReused", method: "POST", path: "/fact", status: 422, problem: "idempotency-key-reused",
			header: header("Content-Type", "application/json", "Idempotency-Key", "openapi-key-1"),
			body:   `{"info":"Something else."}`},
		{name: "Form", method: "POST", path: "/fact", status: 201,
			header: header("Content-Type", "application/x-www-form-urlencoded"), body: "info=Sloths+can+hold+their+breath.&source="},
		{name: "NullSource", method: "POST", path: "/fact", header: jsonBody, body: `{"info":"No source.","source":null}`, status: 201},
		{name: "Batch", method: "POST", path: "/facts", header: jsonBody, status: 201,
			body: `[{"info":"Bananas are berries."},{"info":"Strawberries are not.","source":"https://en.wikipedia.org/wiki/Strawberry"}]`},
		{name: "BatchOfOne", method: "POST", path: "/facts", header: jsonBody, body: `{"info":"One object."}`, status: 201},
		{name: "FormToFacts", method: "POST", path: "/facts", header: header("Content-Type", "application/x-www-form-urlencoded"), body: "info=Form+to+facts.", status: 201},

		{name: "MalformedJSON", method: "POST", path: "/fact", header: jsonBody, body: `{"info":`, status: 400, problem: "invalid-json", invalid: true},
		{name: "BlankInfo", method: "POST", path: "/fact", header: jsonBody, body: `{"info":"   "}`, status: 400, problem: "invalid-fact", invalid: true},
		{name: "UnknownField", method: "POST", path: "/fact", header: jsonBody, body: `{"info":"x","colour":"red"}`, status: 400, problem: "invalid-fact", invalid: true},
		{name: "BadSource", method: "POST", path: "/fact", header: jsonBody, body: `{"info":"x","source":"ftp://x"}`, status: 400, problem: "invalid-fact", invalid: true},
		{name: "ArrayToFact", method: "POST", path: "/fact", header: jsonBody, body: `[{"info":"x"}]`, status: 400, problem: "invalid-json", invalid: true},
		{name: "EmptyBatch", method: "POST", path: "/facts", header: jsonBody, body: `[]`, status: 400, problem: "invalid-batch", invalid: true},
		{name: "BadBatchItem", method: "POST", path: "/facts", header: jsonBody, body: `[{"info":"x"},{"source":"https://x.example"}]`, status: 400, problem: "invalid-fact", invalid: true},
		{name: "FormUnknownField", method: "POST", path: "/fact", header: header("Content-Type", "application/x-www-form-urlencoded"), body: "info=x&colour=red", status: 400, problem: "invalid-fact", invalid: true},
		{name: "BadIdempotencyKey", method: "POST", path: "/fact", body: `{"info":"x"}`, status: 400, problem: "invalid-request", invalid: true,
			header: header("Content-Type", "application/json", "Idempotency-Key", strings.Repeat("k", 256))},
		{name: "TooLarge", method: "POST", path: "/fact", header: jsonBody, body: huge, status: 413, problem: "body-too-large", invalid: true},
		{name: "TextPlain", method: "POST", path: "/fact", header: header("Content-Type", "text/plain"), body: "x", status: 415, problem: "unsupported-media-type", invalid: true},
		{name: "EncodedBody", method: "POST", path: "/fact", header: header("Content-Type", "application/json", "Content-Encoding", "gzip"), body: `{"info":"x"}`,
			status: 415, problem: "unsupported-encoding", invalid: true},
		{name: "NoContentType", method: "POST", path: "/facts", body: `{"info":"x"}`, status: 415, problem: "unsupported-media-type", invalid: true},

		{name: "List", method: "GET", path: "/facts", status: 200},
		{name: "ListPage", method: "GET", path: "/facts?after=1&limit=2", status: 200},
		{name: "ListDesc", method: "GET", path: "/facts?order=desc&before=3&limit=10", status: 200},
		{name: "ListEmpty", method: "GET", path: "/facts?after=1000", status: 200},
		{name: "ListBadLimit", method: "GET", path: "/facts?limit=0", status: 400, problem: "invalid-request", invalid: true},
		{name: "ListBadAfter", method: "GET", path: "/facts?after=-1", status: 400, problem: "invalid-request", invalid: true},
		{name: "ListBadOrder", method: "GET", path: "/facts?order=sideways", status: 400, problem: "invalid-request", invalid: true},
		{name: "Get", method: "GET", path: "/facts/" + created.ID, status: 200},
		{name: "GetUnknown", method: "GET", path: "/facts/0192f0c4-6a2e-7c1a-9d5e-3b8c2f1e4a77", status: 404, problem: "not-found"},
		{name: "GetMalformed", method: "GET", path: "/facts/not-an-id", status: 404, problem: "not-found", invalid: true},
		{name: "StreamBadLastEventID", method: "GET", path: "/events", header: header("Last-Event-ID", "x1"), status: 400, problem: "invalid-request", invalid: true},
		{name: "StreamBadQueryID", method: "GET", path: "/events?lastEventId=-2", status: 400, problem: "invalid-request", invalid: true},

		{name: "DeleteAdminDisabled", method: "DELETE", path: "/facts/" + created.ID, status: 403, problem: "admin-disabled", invalid: true},
		{name: "ExportAdminDisabled", method: "GET", path: "/admin/export", status: 403, problem: "admin-disabled", invalid: true},
		{name: "BackupAdminDisabled", method: "GET", path: "/admin/backup", status: 403, problem: "admin-disabled", invalid: true},
		{name: "Status", method: "GET", path: "/status", status: 200},
		{name: "Healthz", method: "GET", path: "/healthz", status: 200},
		{name: "Readyz", method: "GET", path: "/readyz", status: 200},
		{name: "Metrics", method: "GET", path: "/metrics", status: 200},
		{name: "OpenAPI", method: "GET", path: "/openapi.json", status: 200},
		{name: "Dashboard", method: "GET", path: "/", status: 200},
		{name: "DashboardHead", method: "HEAD", path: "/", status: 200},
		{name: "Asset", method: "GET", path: "/assets/app.js", status: 200},
		{name: "AssetRange", method: "GET", path: "/assets/style.css", header: header("Range", "bytes=0-9"), status: 206},
		{name: "AssetHead", method: "HEAD", path: "/assets/favicon.svg", status: 200},
		{name: "AssetMissing", method: "GET", path: "/assets/missing.js", status: 404},
		{name: "AssetMissingHead", method: "HEAD", path: "/assets/missing.js", status: 404},
	})
	for _, path := range []string{"/", "/openapi.json", "/assets/app.js"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		spec.check(t, base, apiCall{name: "Revalidate " + path, method: "GET", path: path,
			header: header("If-None-Match", resp.Header.Get("ETag")), status: 304})
	}
}

// TestOpenAPIStreamMatchesTheDocument validates the stream's headers and
// its events (snapshots fresh and resumed, facts, truncated, deleted)
// against the document's schemas.
func TestOpenAPIStreamMatchesTheDocument(t *testing.T) {
	cfg := testConfig(t)
	cfg.Heartbeat = 100 * time.Millisecond
	cfg.RetentionFacts = 3
	cfg.AdminTokens = []string{"admin-token-0123456789"}
	srv := startServer(t, cfg)
	spec := fetchSpec(t, srv.URL)

	// streamOf opens url, validates the request and the answer's status
	// and headers, and returns the stream after its retry block.
	streamOf := func(t *testing.T, url string, h http.Header) *sseStream {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header = h.Clone()
		if req.Header == nil {
			req.Header = http.Header{}
		}
		if ok, errs := spec.validator.ValidateHttpRequestSync(req); !ok {
			t.Errorf("the stream request does not match the document:\n%s", describe(errs))
		}
		s := openStream(t, url, h)
		// The body is endless: validate the status and the headers.
		resp := *s.Resp
		resp.Body = http.NoBody
		if ok, errs := spec.validator.ValidateHttpResponse(req, &resp); !ok {
			t.Errorf("the stream's answer does not match the document (headers %v):\n%s", resp.Header, describe(errs))
		}
		ev, err := s.Next(5 * time.Second)
		if err != nil || ev.Retry != "3000" || ev.Data != "" {
			t.Fatalf("first block = %+v (%v), want retry: 3000 alone", ev, err)
		}
		return s
	}
	// next returns the next event, validated as a StreamEvent and as kind.
	next := func(t *testing.T, s *sseStream, kind string) sseEvent {
		t.Helper()
		ev, err := s.Next(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		obj := map[string]any{"data": ev.Data}
		if ev.HasID {
			obj["id"] = ev.ID
		}
		if ev.Event != "" {
			obj["event"] = ev.Event
		}
		spec.validate(t, "StreamEvent", obj)
		spec.validate(t, kind, obj)
		var data any
		if err := json.Unmarshal([]byte(ev.Data), &data); err != nil {
			t.Fatalf("event data %q: %v", ev.Data, err)
		}
		dataSchema := map[string]string{"SnapshotEvent": "SnapshotData", "FactEvent": "Fact",
			"TruncatedEvent": "TruncatedData", "DeletedEvent": "DeletedData"}[kind]
		spec.validate(t, dataSchema, data)
		return ev
	}

	fresh := streamOf(t, srv.URL+"/events", nil)
	if ev := next(t, fresh, "SnapshotEvent"); ev.Data != "[]" || ev.HasID {
		t.Errorf("empty store's snapshot = %+v, want [] without id", ev)
	}
	for i := range 3 {
		postFact(t, srv.URL, fmt.Sprintf("fact-%d", i+1))
		if ev := next(t, fresh, "FactEvent"); ev.ID != fmt.Sprint(i+1) {
			t.Errorf("fact event id = %q, want %d", ev.ID, i+1)
		}
	}
	eventually(t, 5*time.Second, "a keepalive comment", func() bool {
		select {
		case ev := <-fresh.events:
			return slices.Contains(ev.Comments, " keepalive")
		default:
			return false
		}
	})

	whole := streamOf(t, srv.URL+"/events", nil)
	if ev := next(t, whole, "SnapshotEvent"); ev.ID != "3" || len(factsOf(t, ev)) != 3 {
		t.Errorf("snapshot = %+v, want 3 facts with id 3", ev)
	}
	resumed := streamOf(t, srv.URL+"/events", header("Last-Event-ID", "1"))
	if ev := next(t, resumed, "SnapshotEvent"); ev.ID != "3" || len(factsOf(t, ev)) != 2 {
		t.Errorf("catch-up after 1 = %+v, want facts 2 and 3 with id 3", ev)
	}
	upToDate := streamOf(t, srv.URL+"/events?lastEventId=3", nil)
	if ev := next(t, upToDate, "SnapshotEvent"); ev.ID != "3" || ev.Data != "[]" {
		t.Errorf("resume at the head = %+v, want [] with id 3", ev)
	}

	// Past retention (3 facts kept), a resume gets truncated first; a
	// deletion reaches every open stream as deleted.
	var kept []store.Fact
	for i := 4; i <= 5; i++ {
		kept = append(kept, postFact(t, srv.URL, fmt.Sprintf("fact-%d", i)))
		next(t, fresh, "FactEvent")
	}
	eventually(t, 5*time.Second, "retention to keep facts 3 to 5", func() bool {
		var st struct {
			FirstSeq uint64 `json:"first_seq"`
		}
		getJSON(t, srv.URL+"/status", &st)
		return st.FirstSeq == 3
	})
	past := streamOf(t, srv.URL+"/events", header("Last-Event-ID", "1"))
	if ev := next(t, past, "TruncatedEvent"); ev.Data != `{"last_event_id":1,"first_seq":3}` {
		t.Errorf("truncated = %+v, want last_event_id 1 and first_seq 3", ev)
	}
	if ev := next(t, past, "SnapshotEvent"); ev.ID != "5" || len(factsOf(t, ev)) != 3 {
		t.Errorf("catch-up past retention = %+v, want facts 3 to 5 with id 5", ev)
	}
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/facts/"+kept[0].ID, nil)
	req.Header.Set("Authorization", "Bearer admin-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE = %d", resp.StatusCode)
	}
	for _, s := range []*sseStream{fresh, past} {
		if ev := next(t, s, "DeletedEvent"); ev.Data != fmt.Sprintf(`{"id":%q,"seq":4}`, kept[0].ID) {
			t.Errorf("deleted = %+v, want fact 4", ev)
		}
	}
}

// TestOpenAPIValidationCatchesWrongAnswers shows that the validation above
// can fail: answers that break the document are refused.
func TestOpenAPIValidationCatchesWrongAnswers(t *testing.T) {
	doc, err := openapi.Document("test")
	if err != nil {
		t.Fatal(err)
	}
	spec := parseSpec(t, doc)
	fact := `{"id":"0192f0c4-6a2e-7c1a-9d5e-3b8c2f1e4a77","seq":1,"info":"x","source":"","created_at":"2026-11-21T12:00:00.123456Z"}`
	for _, tc := range []struct {
		name, method, path string
		status             int
		header             http.Header
		body               string
	}{
		{"FactWithoutSeq", "GET", "/facts/0192f0c4-6a2e-7c1a-9d5e-3b8c2f1e4a77", 200, header("Content-Type", "application/json"),
			`{"id":"0192f0c4-6a2e-7c1a-9d5e-3b8c2f1e4a77","info":"x","source":"","created_at":"2026-11-21T12:00:00.123456Z"}`},
		{"FactWithAnExtraMember", "GET", "/facts/0192f0c4-6a2e-7c1a-9d5e-3b8c2f1e4a77", 200, header("Content-Type", "application/json"),
			strings.Replace(fact, `"seq":1`, `"seq":1,"likes":3`, 1)},
		{"UndocumentedStatus", "GET", "/status", 418, header("Content-Type", "application/problem+json"),
			`{"type":"urn:factstream:problem:teapot","title":"I'm a teapot","status":418}`},
		{"WrongProblemType", "GET", "/facts/0192f0c4-6a2e-7c1a-9d5e-3b8c2f1e4a77", 404, header("Content-Type", "application/problem+json"),
			`{"type":"urn:factstream:problem:gone","title":"Not Found","status":404}`},
		{"BadRequestWithoutFieldErrors", "GET", "/facts", 400, header("Content-Type", "application/problem+json"),
			`{"type":"urn:factstream:problem:invalid-request","title":"Bad Request","status":400}`},
		{"PublishWithoutLocation", "POST", "/fact", 201, header("Content-Type", "application/json"), fact},
		{"RateLimitWithoutRetryAfter", "POST", "/fact", 429, header("Content-Type", "application/problem+json"),
			`{"type":"urn:factstream:problem:rate-limited","title":"Too Many Requests","status":429}`},
		{"StreamWithoutAccelBuffering", "GET", "/events", 200, header("Content-Type", "text/event-stream", "Cache-Control", "no-cache"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://localhost:3000"+tc.path, nil)
			resp := &http.Response{StatusCode: tc.status, Header: tc.header, Body: io.NopCloser(strings.NewReader(tc.body)), Request: req}
			if ok, _ := spec.validator.ValidateHttpResponse(req, resp); ok {
				t.Errorf("the validator accepts a %d answer with headers %v and body %s", tc.status, tc.header, tc.body)
			}
		})
	}
}
