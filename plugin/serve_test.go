package plugin

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func unixClient(path string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
}

func post(t *testing.T, c *http.Client, path string, body io.Reader) (int, map[string]any) {
	t.Helper()
	res, err := c.Post("http://plugin"+path, "application/json", body)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	out := map[string]any{}
	_ = json.Unmarshal(data, &out)
	return res.StatusCode, out
}

// TestServe: Docker's calls reach both drivers through one socket, only
// root can open it, bad and oversized requests are answered with errors
// while the socket keeps serving, and Close removes the socket.
func TestServe(t *testing.T) {
	r := newRig(t)
	path := filepath.Join(t.TempDir(), "plugins", "weft.sock")
	s, err := Serve(path, r.d, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := Serve(path, r.d, nil); err == nil || !strings.Contains(err.Error(), "another weft router") {
		t.Fatalf("a second Serve on a live socket: %v", err)
	}
	c := unixClient(path)
	_, act := post(t, c, "/Plugin.Activate", nil)
	if imp, _ := act["Implements"].([]any); len(imp) != 2 {
		t.Fatalf("Activate: %v", act)
	}
	code, pool := post(t, c, "/IpamDriver.RequestPool", strings.NewReader(`{"AddressSpace":"weft","Pool":"10.7.0.0/24"}`))
	if code != 200 || pool["Pool"] != "10.7.0.0/24" {
		t.Fatalf("RequestPool: %d %v", code, pool)
	}
	code, caps := post(t, c, "/NetworkDriver.GetCapabilities", nil)
	if code != 200 || caps["Scope"] != "local" {
		t.Fatalf("GetCapabilities: %d %v", code, caps)
	}
	code, e := post(t, c, "/IpamDriver.RequestPool", strings.NewReader(`{"Pool":"10.7.0.0/24"}`))
	if code == 200 || !strings.Contains(e["Err"].(string), "overlaps") {
		t.Fatalf("overlapping pool: %d %v", code, e)
	}

	// Hostile input: garbage, a body over the bound, an unknown path.
	code, e = post(t, c, "/NetworkDriver.CreateNetwork", strings.NewReader(`{"NetworkID": [}`))
	if code == 200 {
		t.Fatalf("garbage JSON accepted: %v", e)
	}
	big := io.MultiReader(strings.NewReader(`{"NetworkID":"`), io.LimitReader(neverEnding('a'), 4<<20), strings.NewReader(`"}`))
	if code, e = post(t, c, "/NetworkDriver.CreateNetwork", big); code == 200 {
		t.Fatalf("a 4 MiB body accepted: %v", e)
	}
	if code, _ = post(t, c, "/Nope", nil); code != 404 {
		t.Fatalf("unknown path: %d", code)
	}
	if code, _ = post(t, c, "/NetworkDriver.GetCapabilities", nil); code != 200 {
		t.Fatalf("the socket stopped serving after bad requests: %d", code)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket left after Close: %v", err)
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}
