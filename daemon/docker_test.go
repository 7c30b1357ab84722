package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/router/routertest"
)

// fakeDocker is an in-memory Docker: containers by ID, and the events the
// test sends.
type fakeDocker struct {
	mu         sync.Mutex
	containers map[string]Container
	events     chan DockerEvent
}

func newFakeDocker() *fakeDocker {
	return &fakeDocker{containers: map[string]Container{}, events: make(chan DockerEvent, 16)}
}

func (f *fakeDocker) Ping(context.Context) error { return nil }

func (f *fakeDocker) Container(_ context.Context, ref string) (Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, c := range f.containers {
		if id == ref || c.Name == strings.TrimPrefix(ref, "/") || (len(ref) >= 4 && strings.HasPrefix(id, ref)) {
			return c, nil
		}
	}
	return Container{}, fmt.Errorf("no container named or with ID %q: %w", ref, ErrNoSuchContainer)
}

func (f *fakeDocker) Events(ctx context.Context) <-chan DockerEvent {
	out := make(chan DockerEvent)
	go func() {
		defer close(out)
		for {
			select {
			case ev := <-f.events:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func (f *fakeDocker) Running(context.Context) ([]RunningContainer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []RunningContainer
	for id, c := range f.containers {
		if c.Running {
			out = append(out, RunningContainer{ID: id, Command: strings.Join(c.Entrypoint, " ")})
		}
	}
	return out, nil
}

func (f *fakeDocker) set(c Container) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[c.ID] = c
}

func (f *fakeDocker) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.containers, id)
}

const webID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func dnsNames(rep *control.Report, target string) []string {
	var out []string
	for _, e := range rep.DNS.Entries {
		if e.Target == target {
			out = append(out, e.Name+"="+e.Address)
		}
	}
	slices.Sort(out)
	return out
}

// TestContainerTargets: a container is attached by name, gets its name in
// DNS, is attached again with the same address when it starts again, and
// is forgotten at once when destroyed; an unknown container is a clear
// user error.
func TestContainerTargets(t *testing.T) {
	nw := routertest.NewNetwork(1)
	dir, host, dk := t.TempDir(), newFakeHost(), newFakeDocker()
	dk.set(Container{ID: webID, Name: "web", Hostname: "0123456789ab", PID: 4242, Running: true})
	dns := func(c *Config) { c.DNS, c.DNSListen, c.ResolvConfRoot = true, "127.0.0.1:0", t.TempDir() }
	r := startRouterDocker(t, nw, dir, host, 10011, dns, dk)
	target := ContainerPrefix + webID

	addrs, err := r.client.Attach(control.AttachRequest{Target: "web", CIDRs: []string{"10.2.1.7/24"}})
	if err != nil || !slices.Equal(addrs, []string{"10.2.1.7/24"}) {
		t.Fatalf("attach web: %v %v", addrs, err)
	}
	rep := r.report(t)
	if len(rep.Attachments) != 1 || rep.Attachments[0].Target != target {
		t.Fatalf("attachments %+v, want %s", rep.Attachments, target)
	}
	if got := dnsNames(rep, target); !slices.Equal(got, []string{"web.weft.local.=10.2.1.7"}) {
		t.Fatalf("DNS %v", got)
	}
	_, err = r.client.Attach(control.AttachRequest{Target: "nope", CIDRs: []string{"10.2.1.8/24"}})
	var ue *control.UserError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), `no container named or with ID "nope"`) {
		t.Fatalf("unknown container: %v", err)
	}

	// A restart: the container's new namespace has no interface; the
	// start event attaches it again with the same address.
	before := host.attaches
	host.Reset("")
	dk.events <- DockerEvent{Type: "container", Action: "start", ContainerID: webID}
	waitFor(t, "the restarted container attached again", func() bool {
		host.mu.Lock()
		defer host.mu.Unlock()
		return host.attaches > before && slices.Equal(host.atts[target], []netip.Prefix{netip.MustParsePrefix("10.2.1.7/24")})
	})

	// destroy: the attachment and the name go at once.
	dk.remove(webID)
	host.vanish(target) // the kernel took the veth with the namespace
	dk.events <- DockerEvent{Type: "container", Action: "destroy", ContainerID: webID}
	waitFor(t, "the destroyed container forgotten", func() bool {
		rep := r.report(t)
		return len(rep.Attachments) == 0 && len(dnsNames(rep, target)) == 0
	})
}

// TestPluginNetworkNames: a container on a weft Docker network gets its
// name in DNS when Docker reports it connected, and loses it when it is
// disconnected.
func TestPluginNetworkNames(t *testing.T) {
	nw := routertest.NewNetwork(1)
	dir, host, dk := t.TempDir(), newFakeHost(), newFakeDocker()
	sock := filepath.Join(t.TempDir(), "plugins", "weft.sock")
	mod := func(c *Config) {
		c.DNS, c.DNSListen, c.ResolvConfRoot = true, "127.0.0.1:0", t.TempDir()
		c.PluginSocket = sock
	}
	r := startRouterDocker(t, nw, dir, host, 10012, mod, dk)
	call := func(path, body string) map[string]any {
		t.Helper()
		c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
		res, err := c.Post("http://plugin"+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		data, _ := io.ReadAll(res.Body)
		out := map[string]any{}
		json.Unmarshal(data, &out)
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, res.StatusCode, data)
		}
		return out
	}
	call("/NetworkDriver.CreateNetwork", `{"NetworkID":"n1","IPv4Data":[{"AddressSpace":"LocalDefault","Pool":"10.9.0.0/24","Gateway":"10.9.0.1/24"}]}`)
	dk.set(Container{ID: webID, Name: "api", PID: 77, Running: true,
		Endpoints: []ContainerEndpoint{{NetworkID: "n1", Addr: netip.MustParsePrefix("10.9.0.2/24")}}})
	dk.events <- DockerEvent{Type: "network", Action: "connect", ContainerID: webID, NetworkID: "n1"}
	target := ContainerPrefix + webID
	waitFor(t, "the name of a container on a weft network", func() bool {
		return slices.Equal(dnsNames(r.report(t), target), []string{"api.weft.local.=10.9.0.2"})
	})
	dk.set(Container{ID: webID, Name: "api2", PID: 77, Running: true,
		Endpoints: []ContainerEndpoint{{NetworkID: "n1", Addr: netip.MustParsePrefix("10.9.0.2/24")}}})
	dk.events <- DockerEvent{Type: "container", Action: "rename", ContainerID: webID}
	waitFor(t, "the name to follow docker rename", func() bool {
		return slices.Equal(dnsNames(r.report(t), target), []string{"api2.weft.local.=10.9.0.2"})
	})
	dk.set(Container{ID: webID, Name: "api2", PID: 77, Running: true})
	dk.events <- DockerEvent{Type: "network", Action: "disconnect", ContainerID: webID, NetworkID: "n1"}
	waitFor(t, "the name removed after disconnect", func() bool { return len(dnsNames(r.report(t), target)) == 0 })
	r.stop()
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestContainerOddNames: a container whose name is no single DNS label
// ("web.v2") is registered under the domain; one whose name is no DNS
// name at all (a label over 63 bytes) is attached without a name rather
// than refused; a refused attach (a bad --name) frees the address it
// was given.
func TestContainerOddNames(t *testing.T) {
	nw := routertest.NewNetwork(1)
	dir, host, dk := t.TempDir(), newFakeHost(), newFakeDocker()
	const dottedID = "1111111111111111111111111111111111111111111111111111111111111111"
	const longID = "2222222222222222222222222222222222222222222222222222222222222222"
	long := strings.Repeat("x", 70)
	dk.set(Container{ID: dottedID, Name: "web.v2", Hostname: "111111111111", PID: 1, Running: true})
	dk.set(Container{ID: longID, Name: long, Hostname: "222222222222", PID: 2, Running: true})
	dns := func(c *Config) { c.DNS, c.DNSListen, c.ResolvConfRoot = true, "127.0.0.1:0", t.TempDir() }
	r := startRouterDocker(t, nw, dir, host, 10015, dns, dk)

	if _, err := r.client.Attach(control.AttachRequest{Target: "web.v2", CIDRs: []string{"10.2.1.7/24"}}); err != nil {
		t.Fatalf("attach web.v2: %v", err)
	}
	if got := dnsNames(r.report(t), ContainerPrefix+dottedID); !slices.Equal(got, []string{"web.v2.weft.local.=10.2.1.7"}) {
		t.Errorf("web.v2's DNS: %v", got)
	}
	if _, err := r.client.Attach(control.AttachRequest{Target: long, CIDRs: []string{"10.2.1.8/24"}}); err != nil {
		t.Fatalf("attach a container with a 70-byte name: %v", err)
	}
	if got := dnsNames(r.report(t), ContainerPrefix+longID); len(got) != 0 {
		t.Errorf("a 70-byte label registered: %v", got)
	}

	held := func() uint64 {
		var n uint64
		if ipam := r.report(t).IPAM; ipam != nil {
			for _, p := range ipam.Pools {
				n += p.Held
			}
		}
		return n
	}
	before := held()
	_, err := r.client.Attach(control.AttachRequest{Target: "netns:c9", Name: strings.Repeat("y", 70)})
	if err == nil || !strings.Contains(err.Error(), "DNS name") {
		t.Fatalf("attach with a bad --name: %v", err)
	}
	if after := held(); after != before {
		t.Errorf("a refused attach kept its address: %d held before, %d after", before, after)
	}
}
