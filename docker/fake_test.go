package docker

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/client"
)

// fakeAPIVersion is the API version of Debian's dockerd 20.10, which the
// fake engine plays.
const fakeAPIVersion = "1.41"

// fakeEngine is enough of a Docker Engine API server for this package, on
// a unix socket: /_ping, /version, /containers/{id}/json, /networks/{id}
// and /events, unversioned or under /vX.Y with X.Y <= 1.41 (newer versions
// are refused, as dockerd 20.10 refuses them).
type fakeEngine struct {
	srv  *httptest.Server
	sock string
	host string // unix://sock

	mu         sync.Mutex
	containers map[string]http.HandlerFunc // by the name or ID in the path
	networks   map[string]http.HandlerFunc
	// events serves stream n (1 for the first); nil: hold it open.
	events   func(w http.ResponseWriter, r *http.Request, n int)
	list     string // the body of GET /containers/json ("[]" when empty)
	streams  int
	requests []string // "METHOD PATH?QUERY" of each request
}

// newFakeEngine starts a fake engine on a socket in a fresh temporary
// directory; it is closed at the end of the test.
func newFakeEngine(t *testing.T) *fakeEngine {
	t.Helper()
	return startFakeEngine(t, fakeSocket(t))
}

// fakeSocket is a path for a socket in the test's temporary directory.
func fakeSocket(t *testing.T) string {
	return filepath.Join(t.TempDir(), "docker.sock")
}

// startFakeEngine starts a fake engine listening on sock.
func startFakeEngine(t *testing.T, sock string) *fakeEngine {
	t.Helper()
	f := &fakeEngine{
		sock:       sock,
		host:       "unix://" + sock,
		containers: map[string]http.HandlerFunc{},
		networks:   map[string]http.HandlerFunc{},
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("fake engine: %v", err)
	}
	f.srv = httptest.NewUnstartedServer(f)
	f.srv.Listener = l
	f.srv.Start()
	t.Cleanup(f.close)
	return f
}

// close stops the server, ending open streams.
func (f *fakeEngine) close() {
	f.srv.CloseClientConnections()
	f.srv.Close()
}

// client is a Client for the fake engine.
func (f *fakeEngine) client(t *testing.T) *Client {
	t.Helper()
	c, err := newClient(nil, client.WithHost(f.host))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// setContainer serves body (with status 200) for the container under each
// of the refs.
func (f *fakeEngine) setContainer(body string, refs ...string) {
	for _, ref := range refs {
		f.handle(f.containers, answer(http.StatusOK, body), ref)
	}
}

// handle serves h for ref in m (f.containers or f.networks).
func (f *fakeEngine) handle(m map[string]http.HandlerFunc, h http.HandlerFunc, ref string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m[ref] = h
}

// setEvents sets the events handler.
func (f *fakeEngine) setEvents(h func(w http.ResponseWriter, r *http.Request, n int)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = h
}

// answer is a handler that answers status and body, as JSON.
func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

// fail answers an error as dockerd does.
func fail(w http.ResponseWriter, status int, format string, args ...any) {
	answer(status, fmt.Sprintf(`{"message":%q}`, fmt.Sprintf(format, args...)))(w, nil)
}

// Requests returns the requests served so far.
func (f *fakeEngine) Requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// ServeHTTP implements http.Handler.
func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	f.mu.Unlock()
	h := w.Header()
	h.Set("Api-Version", fakeAPIVersion)
	h.Set("Ostype", "linux")
	h.Set("Server", "Docker/20.10.24+dfsg1 (linux)")

	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, "/v"); ok {
		version, tail, _ := strings.Cut(rest, "/")
		if versions.GreaterThan(version, fakeAPIVersion) {
			fail(w, http.StatusBadRequest, "client version %s is too new. Maximum supported API version is %s", version, fakeAPIVersion)
			return
		}
		p = "/" + tail
	}
	switch {
	case p == "/containers/json":
		f.mu.Lock()
		body := f.list
		f.mu.Unlock()
		if body == "" {
			body = "[]"
		}
		answer(http.StatusOK, body)(w, r)
	case p == "/_ping":
		h.Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "OK")
	case p == "/version":
		answer(http.StatusOK, `{"Version":"20.10.24+dfsg1","ApiVersion":"1.41","MinAPIVersion":"1.12","Os":"linux"}`)(w, r)
	case strings.HasPrefix(p, "/containers/") && strings.HasSuffix(p, "/json"):
		f.serve(w, r, f.containers, "container", strings.TrimSuffix(strings.TrimPrefix(p, "/containers/"), "/json"))
	case strings.HasPrefix(p, "/networks/"):
		f.serve(w, r, f.networks, "network", strings.TrimPrefix(p, "/networks/"))
	case p == "/events":
		f.mu.Lock()
		f.streams++
		n, events := f.streams, f.events
		f.mu.Unlock()
		if events == nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		events(w, r, n)
	default:
		fail(w, http.StatusNotFound, "page not found")
	}
}

// serve answers with the handler registered for ref, or 404 as dockerd does.
func (f *fakeEngine) serve(w http.ResponseWriter, r *http.Request, m map[string]http.HandlerFunc, what, ref string) {
	f.mu.Lock()
	h := m[ref]
	f.mu.Unlock()
	if h == nil {
		fail(w, http.StatusNotFound, "No such %s: %s", what, ref)
		return
	}
	h(w, r)
}

// streamLines is an events handler body: it sends lines, flushing after
// each, and then ends the stream (hold: keeps it open until the client
// goes).
func streamLines(w http.ResponseWriter, r *http.Request, hold bool, lines ...string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	for _, l := range lines {
		fmt.Fprintln(w, l)
		w.(http.Flusher).Flush()
	}
	if hold {
		<-r.Context().Done()
	}
}
