package control

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHandlerBadInput: unknown paths, wrong methods, long queries and bad
// doctor parameters are answered 4xx before the backend is called (there
// is none here).
func TestHandlerBadInput(t *testing.T) {
	srv := httptest.NewServer(NewHandler(nil, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()
	for _, c := range []struct {
		method, path, body string
		code               int
	}{
		{"GET", "/nope", "", 404},
		{"GET", "/report/x", "", 404},
		{"POST", "/report", "", 405},
		{"GET", "/stop", "", 405},
		{"GET", "/ping", "", 405},
		{"DELETE", "/doctor", "", 405},
		{"GET", "/doctor?peer=a&peer=b", "", 400},
		{"GET", "/doctor?color=red", "", 400},
		{"GET", "/doctor?peer=" + strings.Repeat("x", 300), "", 400},
		{"GET", "/report?" + strings.Repeat("x", 2000), "", 414},
		{"POST", "/ping", "{", 400},
		{"POST", "/ping", `{"peer":"a","extra":1}`, 400},
		{"POST", "/connect", `[1,2]`, 400},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s %.40s: %d %q, want %d", c.method, c.path, resp.StatusCode, body, c.code)
		}
	}
}
