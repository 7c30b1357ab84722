package docker

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

// Recorded from Debian's dockerd 20.10.24 (API 1.41): a container "web"
// (hostname webhost, domain example.org) on a bridge network "n1".
const (
	realID      = "e50dac9ac64b837d11cccd973c8d6ca930d76051a23d00568bfdbaa008ade1c0"
	realNetID   = "5086981d807d3173e338aad92841fe9127cc8f65e156142694976968704355fb"
	realEndptID = "dcbc2cc274d58d5799a7e0b53791224bfc7f5a0155a4f82727675b0b88c45b2c"
)

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestInspectRecorded parses a real answer of dockerd 20.10, reached with
// the API version negotiated down to 1.41.
func TestInspectRecorded(t *testing.T) {
	f := newFakeEngine(t)
	f.setContainer(readTestdata(t, "inspect.json"), "web", realID, realID[:12])
	c := f.client(t)
	want := Container{
		ID: realID, Name: "web", Hostname: "webhost", Domainname: "example.org",
		PID: 21167, Running: true,
		Networks: map[string]Endpoint{"n1": {
			NetworkID:  realNetID,
			EndpointID: realEndptID,
			Addr:       netip.MustParsePrefix("172.30.0.2/24"),
			MAC:        "02:42:ac:1e:00:02",
		}},
	}
	for _, ref := range []string{"web", "/web", realID, realID[:12]} {
		got, err := c.Inspect(ctxTimeout(t), ref)
		if err != nil {
			t.Fatalf("Inspect(%q): %v", ref, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Inspect(%q) =\n%+v\nwant\n%+v", ref, got, want)
		}
	}
	reqs := f.Requests()
	if len(reqs) < 2 || !strings.HasSuffix(reqs[0], " /_ping") {
		t.Fatalf("requests %q: want a ping to negotiate first", reqs)
	}
	for _, r := range reqs[1:] {
		if !strings.HasPrefix(r, "GET /v1.41/containers/") {
			t.Errorf("request %q: want GET /v1.41/containers/...", r)
		}
	}
	if reqs[1] != "GET /v1.41/containers/web/json" {
		t.Errorf("Inspect(/web) asked %q; want the name without its slash", reqs[1])
	}
}

// TestNetworkRecorded parses a real network answer of dockerd 20.10.
func TestNetworkRecorded(t *testing.T) {
	f := newFakeEngine(t)
	body := readTestdata(t, "network.json")
	f.handle(f.networks, answer(http.StatusOK, body), "n1")
	f.handle(f.networks, answer(http.StatusOK, `{"Id":"x","Name":"odd","Driver":"weft","IPAM":{"Config":[{"Subnet":"10.1.1.7/24"},{"Subnet":"bogus"},{"Subnet":"fd00::/64"}]}}`), "odd")
	c := f.client(t)
	got, err := c.Network(ctxTimeout(t), "n1")
	if err != nil {
		t.Fatal(err)
	}
	want := Network{ID: realNetID, Name: "n1", Driver: "bridge", Subnets: []netip.Prefix{netip.MustParsePrefix("172.30.0.0/24")}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Network(n1) = %+v, want %+v", got, want)
	}
	got, err = c.Network(ctxTimeout(t), "odd")
	if err != nil {
		t.Fatal(err)
	}
	want = Network{ID: "x", Name: "odd", Driver: "weft", Subnets: []netip.Prefix{
		netip.MustParsePrefix("10.1.1.0/24"), netip.MustParsePrefix("fd00::/64"),
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Network(odd) = %+v, want %+v", got, want)
	}
	_, err = c.Network(ctxTimeout(t), "nope")
	if !errors.Is(err, ErrNoSuchNetwork) || err.Error() != `no network named or with ID "nope"` {
		t.Errorf("Network(nope): %v; want ErrNoSuchNetwork", err)
	}
}

// TestInspectOdd feeds Inspect odd and hostile answers: each gives a
// result or an error, never a panic, and the errors say what they are.
func TestInspectOdd(t *testing.T) {
	f := newFakeEngine(t)
	huge := func(w http.ResponseWriter, r *http.Request) {
		// An endless JSON string: only the client's bound ends it.
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"Id":"`))
		chunk := []byte(strings.Repeat("a", 64<<10))
		for i := 0; i < 1<<10; i++ { // 64 MiB at most
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	tests := []struct {
		name string
		h    http.HandlerFunc
		want Container // when wantErr is nil and errText is ""
		// the error: wantErr to match with errors.Is, errText to find in it
		wantErr error
		errText string
	}{
		{name: "garbage", h: answer(200, `{"Id": "abc", garbage`), errText: "invalid character"},
		{name: "truncated", h: answer(200, `{"Id": "abc", "State": {`), errText: "EOF"},
		{name: "empty", h: answer(200, ``), errText: "EOF"},
		{name: "null", h: answer(200, `null`), errText: "no ID"},
		{name: "array", h: answer(200, `[1,2]`), errText: "cannot unmarshal"},
		{name: "noid", h: answer(200, `{"Name":"/x"}`), errText: "no ID"},
		{name: "wrongtypes", h: answer(200, `{"Id":"abc","State":{"Pid":"many"}}`), errText: "cannot unmarshal"},
		{name: "huge", h: huge, wantErr: errTooLarge},
		{name: "status500", h: answer(500, `{"message":"boom"}`), errText: "boom"},
		{name: "status500text", h: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "<html>proxy error</html>", http.StatusInternalServerError)
		}, errText: "proxy error"},
		{name: "ambiguous", h: answer(400, `{"message":"multiple IDs found with provided prefix: ab"}`), errText: "multiple IDs"},
		{name: "minimal", h: answer(200, `{"Id":"abc"}`), want: Container{ID: "abc", Networks: map[string]Endpoint{}}},
		{name: "nulls", h: answer(200, `{"Id":"abc","Name":"/n","State":null,"Config":null,"NetworkSettings":{"Networks":{"a":null}}}`),
			want: Container{ID: "abc", Name: "n", Networks: map[string]Endpoint{"a": {}}}},
		{name: "stopped", h: answer(200, `{"Id":"abc","State":{"Running":false,"Pid":55}}`),
			want: Container{ID: "abc", Networks: map[string]Endpoint{}}},
		{name: "negativepid", h: answer(200, `{"Id":"abc","State":{"Running":true,"Pid":-3}}`),
			want: Container{ID: "abc", Running: true, Networks: map[string]Endpoint{}}},
		{name: "oddendpoints", h: answer(200, `{"Id":"abc","NetworkSettings":{"Networks":{
			"bad":{"NetworkID":"n","IPAddress":"bogus","IPPrefixLen":24,"MacAddress":"zz"},
			"v6":{"IPAddress":"fd00::1","IPPrefixLen":64,"MacAddress":"02:42:AC:1E:00:02"},
			"len":{"IPAddress":"10.0.0.1","IPPrefixLen":99},
			"nolen":{"IPAddress":"10.0.0.1"},
			"mapped":{"IPAddress":"::ffff:10.0.0.2","IPPrefixLen":8,"MacAddress":"00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01"}}}}`),
			want: Container{ID: "abc", Networks: map[string]Endpoint{
				"bad":    {NetworkID: "n"},
				"v6":     {MAC: "02:42:ac:1e:00:02"},
				"len":    {},
				"nolen":  {},
				"mapped": {Addr: netip.MustParsePrefix("10.0.0.2/8")},
			}}},
	}
	for _, tt := range tests {
		f.handle(f.containers, tt.h, tt.name)
	}
	c := f.client(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Inspect(ctxTimeout(t), tt.name)
			switch {
			case tt.wantErr == nil && tt.errText == "":
				if err != nil {
					t.Fatalf("Inspect: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("Inspect = %+v, want %+v", got, tt.want)
				}
				return
			case err == nil:
				t.Fatalf("Inspect = %+v, want an error", got)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("Inspect: %v; want %v", err, tt.wantErr)
			case !strings.Contains(err.Error(), tt.errText):
				t.Errorf("Inspect: %v; want it to say %q", err, tt.errText)
			}
			if errors.Is(err, ErrNoSuchContainer) || errors.Is(err, ErrUnreachable) {
				t.Errorf("Inspect: %v: not a missing container or Docker", err)
			}
			if !strings.Contains(err.Error(), `inspect container "`+tt.name+`"`) {
				t.Errorf("Inspect: %v: want the operation in the error", err)
			}
		})
	}
}

// TestNoSuchContainer: unknown names and IDs, and references that cannot
// name a container (asked nothing of Docker).
func TestNoSuchContainer(t *testing.T) {
	f := newFakeEngine(t)
	c := f.client(t)
	for _, ref := range []string{"web", "/web", "0123abc", "", "/", "..", "a/b", "../../version"} {
		_, err := c.Inspect(ctxTimeout(t), ref)
		name := strings.TrimPrefix(ref, "/")
		if !errors.Is(err, ErrNoSuchContainer) || errors.Is(err, ErrUnreachable) {
			t.Errorf("Inspect(%q): %v; want ErrNoSuchContainer", ref, err)
			continue
		}
		if want := `no container named or with ID "` + name + `"`; err.Error() != want {
			t.Errorf("Inspect(%q): %q; want %q", ref, err, want)
		}
	}
	for _, r := range f.Requests() {
		if strings.Contains(r, "version") || strings.Count(r, "/") > 4 {
			t.Errorf("request %q for a reference that cannot name a container", r)
		}
	}
}

// TestUnreachable: no Docker at DOCKER_HOST: New works, and every call
// fails with one line that says where Docker was looked for.
func TestUnreachable(t *testing.T) {
	sock := fakeSocket(t) // nothing listens there
	host := "unix://" + sock
	t.Setenv("DOCKER_HOST", host)
	c, err := New(nil)
	if err != nil {
		t.Fatalf("New without a Docker: %v", err)
	}
	defer c.Close()
	if c.Host() != host {
		t.Errorf("Host() = %q, want DOCKER_HOST %q", c.Host(), host)
	}
	want := "Docker is not reachable at " + host + " (is dockerd running? set DOCKER_HOST to its socket)"
	ctx := ctxTimeout(t)
	_, errInspect := c.Inspect(ctx, "web")
	_, errNetwork := c.Network(ctx, "n1")
	for what, err := range map[string]error{"Ping": c.Ping(ctx), "Inspect": errInspect, "Network": errNetwork} {
		if !errors.Is(err, ErrUnreachable) {
			t.Errorf("%s: %v; want ErrUnreachable", what, err)
			continue
		}
		if err.Error() != want {
			t.Errorf("%s: %q\nwant %q", what, err, want)
		}
	}

	// A socket that is there but where nothing answers.
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx); !errors.Is(err, ErrUnreachable) {
		t.Errorf("Ping of a plain file: %v; want ErrUnreachable", err)
	}
}

// TestNewFromEnv: New follows DOCKER_HOST, negotiates 1.41 and pings.
func TestNewFromEnv(t *testing.T) {
	f := newFakeEngine(t)
	t.Setenv("DOCKER_HOST", f.host)
	c, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(ctxTimeout(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if v := c.api.ClientVersion(); v != fakeAPIVersion {
		t.Errorf("API version after Ping: %s, want %s", v, fakeAPIVersion)
	}
	f.setContainer(`{"Id":"abc"}`, "x")
	if _, err := c.Inspect(ctxTimeout(t), "x"); err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if reqs := f.Requests(); reqs[len(reqs)-1] != "GET /v1.41/containers/x/json" {
		t.Errorf("requests %q", reqs)
	}
}

// TestFakeRefusesNewerAPI checks the fake engine itself: like dockerd
// 20.10, it refuses API versions above 1.41, so the tests above show
// negotiation.
func TestFakeRefusesNewerAPI(t *testing.T) {
	f := newFakeEngine(t)
	f.setContainer(`{"Id":"abc"}`, "x")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", f.sock)
	}}}
	resp, err := hc.Get("http://docker/v1.51/containers/x/json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("API 1.51: status %d, want 400", resp.StatusCode)
	}
}

// FuzzContainerFrom: whatever JSON Docker sends, containerFrom gives a
// Container that keeps its promises, or an error.
func FuzzContainerFrom(f *testing.F) {
	f.Add([]byte(readTestdata(f, "inspect.json")))
	f.Add([]byte(`{"Id":"abc","State":null,"Config":null,"NetworkSettings":{"Networks":{"a":null}}}`))
	f.Add([]byte(`{"Id":"abc","State":{"Running":true,"Pid":-1},"NetworkSettings":{"Networks":{"x":{"IPAddress":"::ffff:1.2.3.4","IPPrefixLen":33}}}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var resp container.InspectResponse
		if json.Unmarshal(data, &resp) != nil {
			return
		}
		ctr, err := containerFrom(resp)
		if err != nil {
			return
		}
		if ctr.ID == "" || strings.HasPrefix(ctr.Name, "/") || ctr.PID < 0 || (!ctr.Running && ctr.PID != 0) || ctr.Networks == nil {
			t.Fatalf("containerFrom(%s) = %+v", data, ctr)
		}
		for name, ep := range ctr.Networks {
			if ep.Addr.IsValid() && (!ep.Addr.Addr().Is4() || ep.Addr.Bits() < 1) {
				t.Fatalf("network %q: address %v", name, ep.Addr)
			}
		}
	})
}

// TestUnreachablePermission: a socket the user may not use says so (only
// as a user other than root, whom permissions do not stop).
func TestUnreachablePermission(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may use any socket")
	}
	f := newFakeEngine(t)
	if err := os.Chmod(f.sock, 0); err != nil {
		t.Fatal(err)
	}
	err := f.client(t).Ping(ctxTimeout(t))
	want := "Docker is not reachable at " + f.host + ": permission denied (run as root or as a member of the docker group)"
	if !errors.Is(err, ErrUnreachable) || err.Error() != want {
		t.Errorf("Ping: %v\nwant %s", err, want)
	}
}
