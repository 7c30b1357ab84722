package netdev

import (
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
)

var pfx = netip.MustParsePrefix

func TestBridge(t *testing.T) {
	e := newEnv(t)
	e.do(func() {
		if err := EnsureBridge(testBridge, 1400); err != nil {
			t.Fatal(err)
		}
		mac, err := BridgeMAC(testBridge)
		if err != nil {
			t.Fatal(err)
		}
		if mac[0]&0x02 == 0 || mac[0]&0x01 != 0 {
			t.Errorf("bridge MAC %s is not unicast and locally administered", mac)
		}
		if err := EnsureBridge(testBridge, 1300); err != nil {
			t.Fatalf("second EnsureBridge: %v", err)
		}
		if again, _ := BridgeMAC(testBridge); again.String() != mac.String() {
			t.Errorf("bridge MAC changed from %s to %s", mac, again)
		}
	})
	out := e.ipHost("-d", "link", "show", testBridge)
	for _, want := range []string{"mtu 1300", "state UP", "stp_state 0", "forward_delay 0"} {
		if !strings.Contains(out, want) && !(want == "state UP" && strings.Contains(out, "UP")) {
			t.Errorf("bridge lacks %q:\n%s", want, out)
		}
	}

	// The router's TAP (a persistent one made by ip here) onto the bridge.
	e.ipHost("tuntap", "add", "weftt0", "mode", "tap")
	e.do(func() {
		if err := AttachToBridge("weftt0", testBridge, 1300); err != nil {
			t.Fatal(err)
		}
	})
	if out := e.ipHost("link", "show", "weftt0"); !strings.Contains(out, "master "+testBridge) || !strings.Contains(out, "mtu 1300") {
		t.Errorf("tap not on bridge with mtu 1300:\n%s", out)
	}
	e.do(func() {
		for range 2 {
			if err := DeleteLink("weftt0"); err != nil {
				t.Fatal(err)
			}
		}
		e.ipHost("link", "add", "weftv0", "type", "veth", "peer", "name", "weftv1")
		if err := EnsureBridge("weftv0", 1400); !errors.Is(err, ErrNotBridge) {
			t.Errorf("EnsureBridge on a dummy = %v, want ErrNotBridge", err)
		}
	})
	if hasLink(e.host, "weftt0") {
		t.Error("DeleteLink left the tap")
	}
}

func TestAttachPingListDetach(t *testing.T) {
	e := newEnv(t)
	c1, c2 := e.container("c1"), e.container("c2")
	e.do(func() {
		if err := EnsureBridge(testBridge, 1400); err != nil {
			t.Fatal(err)
		}
		a1, err := Attach(testBridge, c1, []netip.Prefix{pfx("10.40.0.1/24")}, 1400, AttachOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if a1.Target != c1.String() || a1.HostIf != HostIfName(c1) || len(a1.MAC) != 6 ||
			!slices.Equal(a1.Addrs, []netip.Prefix{pfx("10.40.0.1/24")}) {
			t.Errorf("Attach returned %+v", a1)
		}
		arps := listenARP(t, testBridge)
		if _, err := Attach(testBridge, c2, []netip.Prefix{pfx("10.40.0.2/24"), pfx("fd00:40::2/64")}, 1400, AttachOptions{}); err != nil {
			t.Fatal(err)
		}
		waitGratuitousARP(t, arps, [4]byte{10, 40, 0, 2})
	})
	e.run("ip", "netns", "exec", c1.Name, "ping", "-c", "1", "-W", "5", "10.40.0.2")
	if out := e.ipIn(c2, "-6", "addr", "show", ContainerIf, "to", "fd00:40::2"); !strings.Contains(out, "fd00:40::2/64") || strings.Contains(out, "tentative") {
		t.Errorf("IPv6 address in c2 missing or tentative:\n%s", out)
	}

	inner := e.ipIn(c1, "addr", "show", ContainerIf)
	for _, want := range []string{"10.40.0.1/24", "mtu 1400", "UP"} {
		if !strings.Contains(inner, want) {
			t.Errorf("ethweft in c1 lacks %q:\n%s", want, inner)
		}
	}
	if d := e.ipIn(c1, "-d", "link", "show", ContainerIf); !strings.Contains(d, "gso_max_size 65536 ") {
		t.Errorf("ethweft in c1: want the kernel's gso_max_size 65536 (64 KB super-frames):\n%s", d)
	}
	hostIf := e.ipHost("-d", "link", "show", HostIfName(c1))
	if !strings.Contains(hostIf, "alias weft:"+c1.String()) || !strings.Contains(hostIf, "master "+testBridge) {
		t.Errorf("host veth:\n%s", hostIf)
	}
	if got := strings.TrimSpace(e.run("ip", "netns", "exec", c1.Name, "cat",
		"/proc/sys/net/ipv4/neigh/ethweft/base_reachable_time")); got != "5" {
		t.Errorf("base_reachable_time = %q, want 5", got)
	}

	// An attachment made by an earlier weft had a smaller GSO size.
	e.ipIn(c1, "link", "set", ContainerIf, "gso_max_size", "61928")
	e.do(func() {
		// Idempotent, then a second address, then a conflicting one.
		if _, err := Attach(testBridge, c1, []netip.Prefix{pfx("10.40.0.1/24")}, 1400, AttachOptions{}); err != nil {
			t.Errorf("re-attach: %v", err)
		}
		a, err := Attach(testBridge, c1, []netip.Prefix{pfx("10.40.0.1/24"), pfx("10.41.0.1/24")}, 1400, AttachOptions{})
		if err != nil || len(a.Addrs) != 2 {
			t.Errorf("attach second address: %+v, %v", a, err)
		}
		_, err = Attach(testBridge, c1, []netip.Prefix{pfx("10.40.0.1/16")}, 1400, AttachOptions{})
		if !errors.Is(err, ErrAddressInUse) {
			t.Errorf("attach with other prefix length = %v, want ErrAddressInUse", err)
		}
	})
	if d := e.ipIn(c1, "-d", "link", "show", ContainerIf); !strings.Contains(d, "gso_max_size 65536 ") {
		t.Errorf("ethweft in c1 after re-attach: want gso_max_size 65536 back:\n%s", d)
	}
	e.do(func() {
		list, err := List(testBridge, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].Target != c1.String() || list[1].Target != c2.String() ||
			len(list[0].Addrs) != 2 || list[0].Err != nil || len(list[1].MAC) != 6 {
			t.Errorf("List = %+v", list)
		}

		removed, err := Detach(testBridge, c1, []netip.Prefix{pfx("10.41.0.1/24"), pfx("10.99.0.1/24")})
		if err != nil || !slices.Equal(removed, []netip.Prefix{pfx("10.41.0.1/24")}) {
			t.Errorf("Detach one = %v, %v", removed, err)
		}
		if !hasLink(e.host, HostIfName(c1)) {
			t.Error("veth deleted while an address remains")
		}
		removed, err = Detach(testBridge, c1, nil)
		if err != nil || !slices.Equal(removed, []netip.Prefix{pfx("10.40.0.1/24")}) {
			t.Errorf("Detach all = %v, %v", removed, err)
		}
		if hasLink(e.host, HostIfName(c1)) || hasLink(c1.Name, ContainerIf) {
			t.Error("veth left after the last address was removed")
		}
		if _, err := Detach(testBridge, c1, nil); !errors.Is(err, ErrNotAttached) {
			t.Errorf("Detach of detached target = %v, want ErrNotAttached", err)
		}
	})
	for _, c := range []Target{c1, c2} {
		if n := threadsIn(t, c.Name); n != 0 {
			t.Errorf("%d threads left in %s", n, c.Name)
		}
	}
}

func TestAttachErrors(t *testing.T) {
	e := newEnv(t)
	c3 := e.container("c3")
	missing := Target{Kind: TargetNetns, Name: "weftnone" + c3.Name}
	e.do(func() {
		if _, err := Attach(testBridge, c3, []netip.Prefix{pfx("10.40.0.3/24")}, 1400, AttachOptions{}); !errors.Is(err, ErrNoBridge) {
			t.Errorf("attach without bridge = %v, want ErrNoBridge", err)
		}
		if err := EnsureBridge(testBridge, 1400); err != nil {
			t.Fatal(err)
		}
		_, err := Attach(testBridge, missing, []netip.Prefix{pfx("10.40.0.3/24")}, 1400, AttachOptions{})
		want := `attach netns:` + missing.Name + `: network namespace "` + missing.Name +
			`" not found: create it with 'ip netns add ` + missing.Name + `'`
		if err == nil || err.Error() != want || !errors.Is(err, ErrNamespaceNotFound) {
			t.Errorf("missing namespace:\n got %v\nwant %s", err, want)
		}
		if _, err := Attach(testBridge, Target{Kind: TargetPID, PID: 1 << 30}, nil, 1400, AttachOptions{}); !errors.Is(err, ErrNoSuchProcess) {
			t.Errorf("missing pid = %v, want ErrNoSuchProcess", err)
		}
		if _, err := Attach(testBridge, Target{Kind: TargetNetns, Name: e.host}, nil, 1400, AttachOptions{}); !errors.Is(err, ErrHostNamespace) {
			t.Errorf("host namespace = %v, want ErrHostNamespace", err)
		}
		if _, err := Attach(testBridge, c3, []netip.Prefix{{}}, 1400, AttachOptions{}); !errors.Is(err, ErrBadAddress) {
			t.Errorf("bad CIDR = %v, want ErrBadAddress", err)
		}
	})

	// An address already on another interface inside the namespace: the
	// failed attach leaves nothing behind.
	e.ipIn(c3, "addr", "add", "10.42.0.9/32", "dev", "lo")
	e.do(func() {
		_, err := Attach(testBridge, c3, []netip.Prefix{pfx("10.42.0.1/24"), pfx("10.42.0.9/24")}, 1400, AttachOptions{})
		if !errors.Is(err, ErrAddressInUse) || !strings.Contains(err.Error(), "in use on lo") {
			t.Errorf("address in use = %v", err)
		}
	})
	if hasLink(e.host, HostIfName(c3)) || hasLink(c3.Name, ContainerIf) {
		t.Error("failed attach left a veth behind")
	}

	// An ethweft weft did not make.
	e.ipIn(c3, "link", "add", ContainerIf, "type", "veth", "peer", "name", "weftv1")
	e.do(func() {
		if _, err := Attach(testBridge, c3, []netip.Prefix{pfx("10.42.0.1/24")}, 1400, AttachOptions{}); !errors.Is(err, ErrInterfaceExists) {
			t.Errorf("foreign ethweft = %v, want ErrInterfaceExists", err)
		}
	})
}

func TestPIDTargetAndStale(t *testing.T) {
	e := newEnv(t)
	c4 := e.container("c4")
	cmd := e.startIn(c4)
	target := Target{Kind: TargetPID, PID: cmd.Process.Pid}
	e.do(func() {
		if err := EnsureBridge(testBridge, 1400); err != nil {
			t.Fatal(err)
		}
		if _, err := Attach(testBridge, target, []netip.Prefix{pfx("10.43.0.1/24")}, 1400, AttachOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	if out := e.ipIn(c4, "addr", "show", ContainerIf); !strings.Contains(out, "10.43.0.1/24") {
		t.Errorf("pid target's namespace:\n%s", out)
	}
	// The process exits; its namespace lives on (named c4) but can no
	// longer be found from the target.
	cmd.Process.Kill()
	cmd.Wait()
	e.do(func() {
		list, err := List(testBridge, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].Target != target.String() || !errors.Is(list[0].Err, ErrNoSuchProcess) {
			t.Errorf("List after the process exited = %+v", list)
		}
	})
}

func TestContainerTargetList(t *testing.T) {
	e := newEnv(t)
	c := e.container("c6")
	pid := e.startIn(c).Process.Pid
	id := strings.Repeat("c6", 32)
	target := Target{Kind: TargetContainer, ID: id, PID: pid}
	e.do(func() {
		if err := EnsureBridge(testBridge, 1400); err != nil {
			t.Fatal(err)
		}
		if _, err := Attach(testBridge, target, []netip.Prefix{pfx("10.46.0.1/24")}, 1400, AttachOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	if out := e.ipHost("-d", "link", "show", HostIfName(target)); !strings.Contains(out, "alias weft:container:"+id) {
		t.Errorf("host veth of a container:\n%s", out)
	}
	errDocker := errors.New("docker is not answering")
	for _, tt := range []struct {
		name    string
		resolve func(Target) (Target, error)
		wantErr error // nil: listed with its address
	}{
		{"running", func(t Target) (Target, error) { t.PID = pid; return t, nil }, nil},
		{"stopped", func(t Target) (Target, error) { return t, nil }, ErrNotRunning},
		{"docker fails", func(t Target) (Target, error) { return t, errDocker }, errDocker},
		{"no resolver", nil, nil},
	} {
		e.do(func() {
			list, err := List(testBridge, tt.resolve)
			if err != nil || len(list) != 1 || list[0].Target != "container:"+id {
				t.Fatalf("%s: List = %+v, %v", tt.name, list, err)
			}
			a := list[0]
			switch {
			case tt.resolve == nil:
				if a.Err == nil {
					t.Errorf("%s: no error without a resolver", tt.name)
				}
			case tt.wantErr == nil:
				if a.Err != nil || !slices.Equal(a.Addrs, []netip.Prefix{pfx("10.46.0.1/24")}) {
					t.Errorf("%s: %+v", tt.name, a)
				}
			case !errors.Is(a.Err, tt.wantErr):
				t.Errorf("%s: Err = %v, want %v", tt.name, a.Err, tt.wantErr)
			}
		})
	}
	e.do(func() {
		stopped := Target{Kind: TargetContainer, ID: id}
		if _, err := Detach(testBridge, stopped, nil); !errors.Is(err, ErrNotRunning) {
			t.Errorf("Detach of a stopped container = %v, want ErrNotRunning", err)
		}
		if _, err := Detach(testBridge, target, nil); err != nil {
			t.Errorf("Detach: %v", err)
		}
	})
}

func TestExposeHideReset(t *testing.T) {
	e := newEnv(t)
	c5 := e.container("c5")
	e.do(func() {
		if err := EnsureBridge(testBridge, 1400); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := Expose(testBridge, []netip.Prefix{pfx("10.44.0.254/24")}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := Attach(testBridge, c5, []netip.Prefix{pfx("10.44.0.5/24")}, 1400, AttachOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	e.run("ip", "netns", "exec", c5.Name, "ping", "-c", "1", "-W", "5", "10.44.0.254")
	e.do(func() {
		if got, err := Exposed(testBridge); err != nil || len(got) != 1 {
			t.Errorf("Exposed = %v, %v", got, err)
		}
		removed, err := Hide(testBridge, nil)
		if err != nil || !slices.Equal(removed, []netip.Prefix{pfx("10.44.0.254/24")}) {
			t.Errorf("Hide = %v, %v", removed, err)
		}
		if removed, err := Hide(testBridge, []netip.Prefix{pfx("10.44.0.254/24")}); err != nil || len(removed) != 0 {
			t.Errorf("second Hide = %v, %v", removed, err)
		}
		if err := Reset(testBridge); err != nil {
			t.Fatal(err)
		}
		if err := Reset(testBridge); err != nil {
			t.Errorf("second Reset: %v", err)
		}
	})
	if hasLink(e.host, testBridge) || hasLink(e.host, HostIfName(c5)) || hasLink(c5.Name, ContainerIf) {
		t.Errorf("Reset left links:\n%s", e.ipHost("link"))
	}
}

func TestUnderlayMTU(t *testing.T) {
	e := newEnv(t)
	e.do(func() {
		if _, err := UnderlayMTU(netip.Addr{}); !errors.Is(err, ErrNoRoute) {
			t.Errorf("without a default route = %v, want ErrNoRoute", err)
		}
	})
	e.ipHost("link", "add", "weftul0", "mtu", "1450", "type", "veth", "peer", "name", "weftul1")
	e.ipHost("link", "set", "weftul1", "up")
	e.ipHost("link", "set", "weftul0", "up")
	e.ipHost("addr", "add", "192.0.2.1/24", "dev", "weftul0")
	e.ipHost("route", "add", "default", "via", "192.0.2.254")
	e.ipHost("route", "add", "198.51.100.0/24", "via", "192.0.2.254", "mtu", "1300")
	e.do(func() {
		for _, tt := range []struct {
			dst  netip.Addr
			want int
		}{
			{netip.Addr{}, 1450},
			{netip.MustParseAddr("192.0.2.7"), 1450},
			{netip.MustParseAddr("203.0.113.1"), 1450},
			{netip.MustParseAddr("198.51.100.1"), 1300},
			{netip.MustParseAddr("127.0.0.1"), 65536},
		} {
			if got, err := UnderlayMTU(tt.dst); err != nil || got != tt.want {
				t.Errorf("UnderlayMTU(%v) = %d, %v; want %d", tt.dst, got, err, tt.want)
			}
		}
	})
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}
