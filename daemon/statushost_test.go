package daemon

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestStatusAPIHost: the status API answers only requests whose Host
// names a loopback address or the listen address (issue 16: DNS
// rebinding from a browser).
func TestStatusAPIHost(t *testing.T) {
	d := &Daemon{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ss, err := d.startStatusServer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	for _, listen := range []string{"", "127.0.0.1:6784", "192.0.2.7:6784", "0.0.0.0:6784", "[::]:6784"} {
		srv := httptest.NewUnstartedServer(hostGuard(listen, d.statusHandler()))
		if listen == "" { // the real status server, as the router starts it
			srv.Listener.Close()
			srv.URL = "http://" + ss.Addr
		} else {
			srv.Start()
		}
		for _, c := range []struct {
			host string
			ok   bool
		}{
			{"127.0.0.1:6784", true},
			{"127.0.0.1", true},
			{"127.9.9.9:6784", true},
			{"localhost:6784", true},
			{"LOCALHOST", true},
			{"[::1]:6784", true},
			{strings.TrimPrefix(srv.URL, "http://"), true},
			{"192.0.2.7:6784", listen == "192.0.2.7:6784"},
			{"evil.example:6784", false},
			{"evil.example", false},
			{"127.0.0.1.evil.example", false},
			{"localhost.evil.example:6784", false},
			{"192.0.2.8:6784", false},
			{"0.0.0.0:6784", false},
		} {
			req, _ := http.NewRequest("GET", srv.URL+"/", nil)
			req.Host = c.host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case c.ok && resp.StatusCode != http.StatusOK:
				t.Errorf("listen %s, Host %q: %d %s, want 200", listen, c.host, resp.StatusCode, body)
			case !c.ok && resp.StatusCode != http.StatusMisdirectedRequest:
				t.Errorf("listen %s, Host %q: %d %s, want 421", listen, c.host, resp.StatusCode, body)
			case !c.ok && !strings.Contains(string(body), "DNS rebinding"):
				t.Errorf("listen %s, Host %q: message %q does not say why", listen, c.host, body)
			}
		}
		srv.Close()
	}
}
