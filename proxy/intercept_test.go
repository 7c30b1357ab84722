package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/weftnet/weft/proxy/hold"
)

// fakeWeft is the router as the proxy sees it.
type fakeWeft struct {
	mu        sync.Mutex
	attached  []string
	attachErr error
	noDNS     bool
}

func (f *fakeWeft) CheckAddrs(specs []string) error {
	for _, s := range specs {
		switch {
		case s == "garbage":
			return errors.New(`invalid address "garbage"`)
		case s == "ip:10.32.0.9/12":
			return errors.New("address 10.32.0.9 is already taken")
		}
	}
	return nil
}

func (f *fakeWeft) AttachContainer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attached = append(f.attached, id)
	return f.attachErr
}

func (f *fakeWeft) DNS() (string, string, bool) {
	return "169.254.53.53", "weft.local.", !f.noDNS
}

// fakeEngine is the part of the Engine API the proxy asks and changes:
// images, networks, create, start, inspect, list and kill of one
// container.
type fakeEngine struct {
	mu       sync.Mutex
	created  []byte   // the last create body
	requests []string // method and path of each request
	killed   []string
	inspect  string // inspect answer for container "c1"
	list     string
}

func (e *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests = append(e.requests, r.Method+" "+apiPath(r.URL.Path))
	w.Header().Set("Api-Version", "1.41")
	notFound := func(what string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"No such `+what+`"}`)
	}
	switch p := apiPath(r.URL.Path); {
	case p == "/_ping":
		io.WriteString(w, "OK")
	case p == "/images/nginx/json":
		io.WriteString(w, `{"Id":"sha256:1","Config":{"Entrypoint":["/docker-entrypoint.sh"],"Cmd":["nginx","-g","daemon off;"]}}`)
	case p == "/images/busybox/json":
		io.WriteString(w, `{"Id":"sha256:2","Config":{"Cmd":["sh"]}}`)
	case strings.HasPrefix(p, "/images/"):
		notFound("image")
	case p == "/networks/weftnet1":
		io.WriteString(w, `{"Name":"weftnet1","Id":"n1","Driver":"weft"}`)
	case p == "/networks/other":
		io.WriteString(w, `{"Name":"other","Id":"n2","Driver":"bridge"}`)
	case strings.HasPrefix(p, "/networks/") && r.Method == http.MethodGet:
		notFound("network")
	case p == "/containers/create", p == "/networks/create":
		e.created, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"Id":"c1","Warnings":[]}`)
	case p == "/containers/c1/start":
		w.WriteHeader(http.StatusNoContent)
	case p == "/containers/c1/json":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, e.inspect)
	case p == "/containers/json":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, e.list)
	case p == "/containers/c1/kill":
		e.killed = append(e.killed, r.URL.Query().Get("signal"))
		w.WriteHeader(http.StatusNoContent)
	default:
		notFound("thing")
	}
}

func (e *fakeEngine) lastCreate() []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.created
}

// startWeft serves a proxy with the fake router in front of e.
func startWeft(t *testing.T, e *fakeEngine, w *fakeWeft, noDefault bool) *http.Client {
	t.Helper()
	_, _, c := start(t, Config{DockerHost: engine(t, e), Weft: w, HoldBinary: "/var/lib/weft/weft-hold", NoDefaultIPAlloc: noDefault})
	return c
}

func post(t *testing.T, c *http.Client, path, body string) *http.Response {
	t.Helper()
	resp, err := c.Post("http://docker"+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// sent decodes what the engine was asked to create.
type sent struct {
	Hostname, Domainname string
	Entrypoint, Cmd      []string
	HostConfig           struct {
		Dns, DnsSearch []string
		NetworkMode    string
		Mounts         []struct {
			Type, Source, Target string
			ReadOnly             bool
		}
	}
	Future string
}

func decodeSent(t *testing.T, b []byte) sent {
	t.Helper()
	var s sent
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("engine got %q: %v", b, err)
	}
	return s
}

// TestCreateHeld: a container for the weft network gets the hold
// entrypoint before the image's, the image's command, the binary mounted,
// a hostname from its name and weft's DNS; a field the proxy does not
// know passes in its place.
func TestCreateHeld(t *testing.T) {
	e := &fakeEngine{}
	c := startWeft(t, e, &fakeWeft{}, false)
	for _, env := range []string{`"WEFT_CIDR=10.2.1.1/24"`, `"A=b"`, `"WEFT_CIDR=net:default"`} {
		resp := post(t, c, "/v1.41/containers/create?name=web", `{"Future":"kept","Image":"nginx","Env":[`+env+`],"HostConfig":{"NetworkMode":"default"}}`)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("env %s: status %d: %s", env, resp.StatusCode, dockerError(t, resp))
		}
		resp.Body.Close()
		got := decodeSent(t, e.lastCreate())
		want := append(hold.Entrypoint(), "/docker-entrypoint.sh")
		if !slices.Equal(got.Entrypoint, want) || !slices.Equal(got.Cmd, []string{"nginx", "-g", "daemon off;"}) {
			t.Errorf("env %s: entrypoint %q cmd %q", env, got.Entrypoint, got.Cmd)
		}
		if m := got.HostConfig.Mounts; len(m) != 1 || m[0].Type != "bind" || m[0].Source != "/var/lib/weft/weft-hold" || m[0].Target != hold.MountPath || !m[0].ReadOnly {
			t.Errorf("env %s: mounts %+v", env, m)
		}
		if got.Hostname != "web" || got.Domainname != "weft.local" || !slices.Equal(got.HostConfig.Dns, []string{"169.254.53.53"}) || !slices.Equal(got.HostConfig.DnsSearch, []string{"weft.local"}) {
			t.Errorf("env %s: hostname %q.%q dns %q search %q", env, got.Hostname, got.Domainname, got.HostConfig.Dns, got.HostConfig.DnsSearch)
		}
		if got.Future != "kept" || got.HostConfig.NetworkMode != "default" || !bytes.HasPrefix(e.lastCreate(), []byte(`{"Future":"kept","Image":"nginx"`)) {
			t.Errorf("env %s: the request's own fields changed: %s", env, e.lastCreate())
		}
	}
}

// TestCreateUserChoices: what the user set stays: an entrypoint (which
// drops the image's command), a command, a hostname, DNS servers and
// search domains, mounts of their own.
func TestCreateUserChoices(t *testing.T) {
	e := &fakeEngine{}
	c := startWeft(t, e, &fakeWeft{}, false)
	resp := post(t, c, "/containers/create?name=web", `{"Image":"nginx","Hostname":"mine","Entrypoint":["/bin/sh","-c"],"HostConfig":{"Dns":["10.9.9.9"],"DnsSearch":["example"],"Mounts":[{"Type":"volume","Source":"v","Target":"/data"}]}}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.StatusCode, dockerError(t, resp))
	}
	resp.Body.Close()
	got := decodeSent(t, e.lastCreate())
	if !slices.Equal(got.Entrypoint, append(hold.Entrypoint(), "/bin/sh", "-c")) || got.Cmd != nil {
		t.Errorf("entrypoint %q cmd %q", got.Entrypoint, got.Cmd)
	}
	if got.Hostname != "mine" || got.Domainname != "" || !slices.Equal(got.HostConfig.Dns, []string{"10.9.9.9"}) || !slices.Equal(got.HostConfig.DnsSearch, []string{"example"}) {
		t.Errorf("user's settings changed: %+v", got)
	}
	if m := got.HostConfig.Mounts; len(m) != 2 || m[0].Target != "/data" || m[1].Target != hold.MountPath {
		t.Errorf("mounts %+v", m)
	}

	resp = post(t, c, "/containers/create", `{"Image":"busybox","Cmd":["ping","web"],"Entrypoint":[""]}`)
	resp.Body.Close()
	got = decodeSent(t, e.lastCreate())
	if !slices.Equal(got.Entrypoint, hold.Entrypoint()) || !slices.Equal(got.Cmd, []string{"ping", "web"}) || got.Hostname != "" {
		t.Errorf("--entrypoint '' ping web: entrypoint %q cmd %q hostname %q", got.Entrypoint, got.Cmd, got.Hostname)
	}
}

// TestCreatePassThrough: containers that do not go on the weft network
// reach Docker byte for byte as sent.
func TestCreatePassThrough(t *testing.T) {
	cases := []struct {
		name, body string
		noDefault  bool
	}{
		{"WEFT_CIDR=none", `{"Image":"nginx","Env":["WEFT_CIDR=none"]}`, false},
		{"host network", `{"Image":"nginx","HostConfig":{"NetworkMode":"host"}}`, false},
		{"another container's network", `{"Image":"nginx","HostConfig":{"NetworkMode":"container:abc"}}`, false},
		{"no default allocation", `{"Image":"nginx"}`, true},
		{"image not pulled yet", `{"Image":"absent"}`, false},
		{"no command at all", `{"Image":"scratchy","Entrypoint":[""]}`, false},
		{"not JSON", `{"Image":`, false},
		{"JSON null", `null`, false},
		{"not an object", `[1,2]`, false},
	}
	for _, tc := range cases {
		e := &fakeEngine{}
		c := startWeft(t, e, &fakeWeft{}, tc.noDefault)
		resp := post(t, c, "/v1.41/containers/create", tc.body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("%s: status %d", tc.name, resp.StatusCode)
		}
		if got := string(e.lastCreate()); got != tc.body {
			t.Errorf("%s: engine got %s, want it unchanged", tc.name, got)
		}
	}
}

// TestCreateRefused: bad WEFT_CIDR values are answered 400 with Docker's
// error body, and Docker never sees the container.
func TestCreateRefused(t *testing.T) {
	e := &fakeEngine{}
	c := startWeft(t, e, &fakeWeft{}, false)
	for body, want := range map[string]string{
		`{"Image":"nginx","Env":["WEFT_CIDR=garbage"]}`:                                             `invalid address "garbage"`,
		`{"Image":"nginx","Env":["WEFT_CIDR=ip:10.32.0.9/12"]}`:                                     "already taken",
		`{"Image":"nginx","Env":["WEFT_CIDR=none 10.2.1.1/24"]}`:                                    "none cannot be combined",
		`{"Image":"nginx","Env":["WEFT_CIDR=10.2.1.1/24"],"HostConfig":{"NetworkMode":"host"}}`:     "--network host",
		`{"Image":"nginx","Env":["WEFT_CIDR=10.2.1.1/24"],"HostConfig":{"NetworkMode":"weftnet1"}}`: "use --ip",
	} {
		resp := post(t, c, "/v1.41/containers/create", body)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", body, resp.StatusCode)
		}
		if msg := dockerError(t, resp); !strings.Contains(msg, want) || !strings.HasPrefix(msg, "weft: ") {
			t.Errorf("%s: message %q, want it to say %q", body, msg, want)
		}
	}
	if e.lastCreate() != nil {
		t.Errorf("Docker was asked to create %s", e.lastCreate())
	}
	// The proxy still serves.
	resp, err := c.Get("http://docker/_ping")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("ping after refusals: %v", err)
	}
	resp.Body.Close()
}

// TestCreateOnWeftNetwork: a container on a weft Docker network is not
// held (the plugin gives its interface) but gets a hostname and weft's
// DNS; one on another user network goes on weft as well.
func TestCreateOnWeftNetwork(t *testing.T) {
	e := &fakeEngine{}
	c := startWeft(t, e, &fakeWeft{}, false)
	resp := post(t, c, "/containers/create?name=web", `{"Image":"nginx","HostConfig":{"NetworkMode":"weftnet1"}}`)
	resp.Body.Close()
	got := decodeSent(t, e.lastCreate())
	if got.Entrypoint != nil || got.HostConfig.Mounts != nil {
		t.Errorf("held on a weft network: entrypoint %q mounts %+v", got.Entrypoint, got.HostConfig.Mounts)
	}
	if got.Hostname != "web" || !slices.Equal(got.HostConfig.Dns, []string{"169.254.53.53"}) || got.HostConfig.NetworkMode != "weftnet1" {
		t.Errorf("on weftnet1: %+v", got)
	}

	resp = post(t, c, "/containers/create?name=web", `{"Image":"nginx","HostConfig":{"NetworkMode":"other"}}`)
	resp.Body.Close()
	if got := decodeSent(t, e.lastCreate()); len(got.Entrypoint) == 0 || got.Entrypoint[0] != hold.MountPath {
		t.Errorf("on a bridge network: not held: %q", got.Entrypoint)
	}
}

// TestCreateWithoutDNS: a router without DNS gives hostnames but no DNS
// settings.
func TestCreateWithoutDNS(t *testing.T) {
	e := &fakeEngine{}
	c := startWeft(t, e, &fakeWeft{noDNS: true}, false)
	resp := post(t, c, "/containers/create?name=web", `{"Image":"nginx"}`)
	resp.Body.Close()
	got := decodeSent(t, e.lastCreate())
	if got.Hostname != "web" || got.Domainname != "" || got.HostConfig.Dns != nil || got.HostConfig.DnsSearch != nil {
		t.Errorf("without DNS: %+v", got)
	}
}

// heldInspect is a held container's inspect document, members in
// Docker's order.
const heldInspect = `{"Id":"c1","Path":"/.weft/weft","Args":["wait-for-interface","--","/docker-entrypoint.sh","nginx"],"Name":"/web",` +
	`"HostConfig":{"Binds":null,"Mounts":[{"Type":"bind","Source":"/var/lib/weft/weft-hold","Target":"/.weft/weft","ReadOnly":true}],"Dns":["169.254.53.53"]},` +
	`"Mounts":[{"Type":"bind","Source":"/var/lib/weft/weft-hold","Destination":"/.weft/weft","RW":false}],` +
	`"Config":{"Hostname":"web","Cmd":["nginx"],"Image":"nginx","Entrypoint":["/.weft/weft","wait-for-interface","--","/docker-entrypoint.sh"]}}`

// TestStartAttaches: the start of a held container is answered once the
// router attached it.
func TestStartAttaches(t *testing.T) {
	e := &fakeEngine{inspect: heldInspect}
	w := &fakeWeft{}
	c := startWeft(t, e, w, false)
	resp := post(t, c, "/v1.41/containers/c1/start", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || !slices.Equal(w.attached, []string{"c1"}) {
		t.Errorf("start: status %d, attached %q", resp.StatusCode, w.attached)
	}

	// A container the proxy did not hold is not the router's to attach.
	e.inspect = `{"Id":"c1","Config":{"Entrypoint":["/docker-entrypoint.sh"]}}`
	w.attached = nil
	resp = post(t, c, "/v1.41/containers/c1/start", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || w.attached != nil {
		t.Errorf("start of an unheld container: status %d, attached %q", resp.StatusCode, w.attached)
	}
}

// TestStartAttachFails: a held container that cannot be attached is
// killed, and the start answered with why.
func TestStartAttachFails(t *testing.T) {
	e := &fakeEngine{inspect: heldInspect}
	c := startWeft(t, e, &fakeWeft{attachErr: errors.New("address 10.2.1.1 is taken by peer b")}, false)
	resp := post(t, c, "/containers/c1/start", "")
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", resp.StatusCode)
	}
	if msg := dockerError(t, resp); !strings.Contains(msg, "taken by peer b") || !strings.Contains(msg, "web") {
		t.Errorf("message %q", msg)
	}
	if !slices.Equal(e.killed, []string{"KILL"}) {
		t.Errorf("killed %q", e.killed)
	}
}

// TestInspectUnwrapped: inspect shows the container as the user made it,
// members in Docker's order.
func TestInspectUnwrapped(t *testing.T) {
	e := &fakeEngine{inspect: heldInspect}
	c := startWeft(t, e, &fakeWeft{}, false)
	resp, err := c.Get("http://docker/v1.41/containers/c1/json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `{"Id":"c1","Path":"/docker-entrypoint.sh","Args":["nginx"],"Name":"/web",` +
		`"HostConfig":{"Binds":null,"Mounts":null,"Dns":["169.254.53.53"]},"Mounts":[],` +
		`"Config":{"Hostname":"web","Cmd":["nginx"],"Image":"nginx","Entrypoint":["/docker-entrypoint.sh"]}}`
	if string(body) != want {
		t.Errorf("inspect:\n got %s\nwant %s", body, want)
	}
	if resp.ContentLength != int64(len(want)) {
		t.Errorf("Content-Length %d for %d bytes", resp.ContentLength, len(want))
	}

	// A container the proxy did not hold is passed byte for byte.
	e.inspect = `{"Id":"c1",  "Config":{"Entrypoint":null}}`
	resp, _ = c.Get("http://docker/containers/c1/json")
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != e.inspect {
		t.Errorf("unheld inspect changed: %s", body)
	}
}

// TestListUnwrapped: docker ps shows the user's command.
func TestListUnwrapped(t *testing.T) {
	e := &fakeEngine{list: `[{"Id":"c1","Command":"/.weft/weft wait-for-interface -- /docker-entrypoint.sh nginx","Mounts":[{"Destination":"/.weft/weft"},{"Destination":"/data"}]},{"Id":"c2","Command":"sh"}]`}
	c := startWeft(t, e, &fakeWeft{}, false)
	resp, err := c.Get("http://docker/v1.41/containers/json?all=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `[{"Id":"c1","Command":"/docker-entrypoint.sh nginx","Mounts":[{"Destination":"/data"}]},{"Id":"c2","Command":"sh"}]`
	if string(body) != want {
		t.Errorf("list:\n got %s\nwant %s", body, want)
	}
}

// TestNetworkCreate: a weft network gets weft's IPAM unless the user
// chose an IPAM driver; other networks pass unchanged.
func TestNetworkCreate(t *testing.T) {
	e := &fakeEngine{}
	c := startWeft(t, e, &fakeWeft{}, false)
	for body, want := range map[string]string{
		`{"Name":"n","Driver":"weft"}`: `{"Name":"n","Driver":"weft","IPAM":{"Driver":"weft"}}`,
		`{"Name":"n","Driver":"weft","IPAM":{"Driver":"default","Config":[{"Subnet":"10.1.1.0/24","Gateway":"10.1.1.1"}],"Options":{}}}`: `{"Name":"n","Driver":"weft","IPAM":{"Driver":"weft","Config":[{"Subnet":"10.1.1.0/24","Gateway":"10.1.1.1"}],"Options":{}}}`,
		`{"Name":"n","Driver":"weft","IPAM":{"Driver":"other"}}`:                                                                         `{"Name":"n","Driver":"weft","IPAM":{"Driver":"other"}}`,
		`{"Name":"n","Driver":"bridge"}`:           `{"Name":"n","Driver":"bridge"}`,
		`{"Name":"n","Driver":"weft","IPAM":null}`: `{"Name":"n","Driver":"weft","IPAM":{"Driver":"weft"}}`,
		`not json`: `not json`,
	} {
		resp := post(t, c, "/v1.41/networks/create", body)
		resp.Body.Close()
		if got := string(e.lastCreate()); got != want {
			t.Errorf("%s:\n got %s\nwant %s", body, got, want)
		}
	}
}

// TestCreateBodyBounded: a create body beyond the bound is refused with
// 413 and the proxy goes on.
func TestCreateBodyBounded(t *testing.T) {
	e := &fakeEngine{}
	c := startWeft(t, e, &fakeWeft{}, false)
	huge := `{"Image":"nginx","Env":["` + strings.Repeat("x", maxCreateBody) + `"]}`
	resp := post(t, c, "/containers/create", huge)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", resp.StatusCode)
	}
	dockerError(t, resp)
	if e.lastCreate() != nil {
		t.Error("Docker saw the huge request")
	}
}

func TestMergeCommand(t *testing.T) {
	img := []string{"/entry"}
	imgCmd := []string{"serve"}
	for _, tc := range []struct {
		entry, cmd         []string
		wantEntry, wantCmd []string
	}{
		{nil, nil, img, imgCmd},
		{nil, []string{"sh"}, img, []string{"sh"}},
		{[]string{"/bin/x"}, nil, []string{"/bin/x"}, nil},
		{[]string{"/bin/x"}, []string{"y"}, []string{"/bin/x"}, []string{"y"}},
		{[]string{""}, nil, nil, nil},
		{[]string{""}, []string{"ls"}, nil, []string{"ls"}},
	} {
		e, c := mergeCommand(tc.entry, tc.cmd, img, imgCmd)
		if !slices.Equal(e, tc.wantEntry) || !slices.Equal(c, tc.wantCmd) {
			t.Errorf("entry %q cmd %q: got %q %q, want %q %q", tc.entry, tc.cmd, e, c, tc.wantEntry, tc.wantCmd)
		}
	}
}

func TestAttachSpecs(t *testing.T) {
	for _, tc := range []struct {
		env                []string
		specs              []string
		set, attach, isErr bool
	}{
		{nil, nil, false, true, false},
		{[]string{"WEFT_CIDR="}, nil, true, true, false},
		{[]string{"WEFT_CIDR=10.2.1.1/24"}, []string{"10.2.1.1/24"}, true, true, false},
		{[]string{"WEFT_CIDR=net:10.2.3.0/24 ip:10.2.1.1/24,net:default"}, []string{"net:10.2.3.0/24", "ip:10.2.1.1/24", "net:default"}, true, true, false},
		{[]string{"WEFT_CIDR=10.2.1.1/24", "WEFT_CIDR=none"}, nil, true, false, false},
		{[]string{"WEFT_CIDRX=1", "XWEFT_CIDR=2"}, nil, false, true, false},
		{[]string{"WEFT_CIDR=none none"}, nil, true, false, true},
		{[]string{"WEFT_CIDR=" + strings.Repeat("net:default ", maxCIDRSpecs+1)}, nil, true, false, true},
	} {
		specs, set, attach, err := AttachSpecs(tc.env)
		if !slices.Equal(specs, tc.specs) || set != tc.set || (err == nil && attach != tc.attach) || (err != nil) != tc.isErr {
			t.Errorf("%q: %q set=%v attach=%v err=%v", tc.env, specs, set, attach, err)
		}
	}
}

func TestRouteOf(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         route
		id           string
	}{
		{"POST", "/v1.41/containers/create", routeCreate, ""},
		{"POST", "/containers/create", routeCreate, ""},
		{"GET", "/containers/create", routeNone, ""},
		{"POST", "/v1.47/containers/abc/start", routeStart, "abc"},
		{"GET", "/v1.47/containers/web/json", routeInspect, "web"},
		{"GET", "/v1.47/containers/json", routeList, ""},
		{"POST", "/v1/networks/create", routeNetworkCreate, ""},
		{"POST", "/vx/containers/create", routeNone, ""},
		{"POST", "/v1.41/v1.41/containers/create", routeNone, ""},
	} {
		if got, id := routeOf(tc.method, tc.path); got != tc.want || id != tc.id {
			t.Errorf("%s %s: %v %q, want %v %q", tc.method, tc.path, got, id, tc.want, tc.id)
		}
	}
}

func TestObjectKeepsOrder(t *testing.T) {
	in := `{"z":1,"a":{"y":[1,2],"b":null},"m":"s"}`
	var o object
	if err := json.Unmarshal([]byte(in), &o); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(o)
	if err != nil || string(out) != in {
		t.Fatalf("round trip: %s %v", out, err)
	}
	if err := o.set("a", 2); err != nil {
		t.Fatal(err)
	}
	_ = o.set("new", "x")
	if out, _ := json.Marshal(o); string(out) != `{"z":1,"a":2,"m":"s","new":"x"}` {
		t.Errorf("after set: %s", out)
	}
	for _, bad := range []string{`[1]`, `"s"`, `{"a":}`, `{1:2}`} {
		var o object
		if json.Unmarshal([]byte(bad), &o) == nil {
			t.Errorf("%s decoded as an object", bad)
		}
	}
}

func TestIsWeftDriver(t *testing.T) {
	for driver, want := range map[string]bool{
		"weft": true, "weftnet/weft:0.1.0": true, "weftnet/weft": true, "weft:latest": true,
		"registry.local:5000/me/weft:2": true, "bridge": false, "overlay": false, "weftnet/weave:1": false,
		"weftish": false, "": false, "weft/other": false,
	} {
		if got := isWeftDriver(driver); got != want {
			t.Errorf("isWeftDriver(%q) = %v, want %v", driver, got, want)
		}
	}
	out := planNetworkCreate([]byte(`{"Name":"n","Driver":"weftnet/weft:0.1.0","IPAM":{"Driver":"default","Config":[{"Subnet":"10.1.1.0/24"}]}}`))
	if !strings.Contains(string(out), `"Driver":"weftnet/weft:0.1.0","IPAM":{"Driver":"weftnet/weft:0.1.0"`) {
		t.Errorf("network create with the managed plugin: %s", out)
	}
}
