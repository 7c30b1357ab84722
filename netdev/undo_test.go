package netdev

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestFailedAttachUndoes(t *testing.T) {
	e := newEnv(t)
	c := e.container("undo")
	resolv := "/etc/netns/" + c.Name
	_, statErr := os.Stat(resolv)
	fault := errors.New("injected failure")
	t.Cleanup(func() { attachFault = nil })
	e.do(func() {
		if err := EnsureBridge(testBridge, 1400); err != nil {
			t.Fatal(err)
		}
		// A first attach that fails after its veth and address exist:
		// nothing stays.
		attachFault = func() error { return fault }
		if _, err := Attach(testBridge, c, []netip.Prefix{pfx("10.44.0.1/24")}, 1400, AttachOptions{}); !errors.Is(err, fault) {
			t.Fatalf("attach = %v, want the injected failure", err)
		}
	})
	if hasLink(e.host, HostIfName(c)) || hasLink(c.Name, ContainerIf) {
		t.Error("failed attach left a veth behind")
	}
	if out := e.ipIn(c, "-o", "addr", "show"); strings.Contains(out, "10.44.0.1") {
		t.Errorf("failed attach left an address:\n%s", out)
	}

	// On an attached target, a failed attach of more addresses takes back
	// only what it added.
	e.do(func() {
		attachFault = nil
		if _, err := Attach(testBridge, c, []netip.Prefix{pfx("10.44.0.1/24")}, 1400, AttachOptions{}); err != nil {
			t.Fatal(err)
		}
		attachFault = func() error { return fault }
		if _, err := Attach(testBridge, c, []netip.Prefix{pfx("10.44.0.1/24"), pfx("10.45.0.1/24")}, 1400, AttachOptions{}); !errors.Is(err, fault) {
			t.Fatalf("second attach = %v, want the injected failure", err)
		}
		attachFault = nil
	})
	if !hasLink(e.host, HostIfName(c)) || !hasLink(c.Name, ContainerIf) {
		t.Error("failed second attach removed the veth of the first")
	}
	out := e.ipIn(c, "-o", "addr", "show", "dev", ContainerIf)
	if !strings.Contains(out, "10.44.0.1/24") || strings.Contains(out, "10.45.0.1") {
		t.Errorf("after a failed second attach, want only 10.44.0.1/24:\n%s", out)
	}
	if _, err := os.Stat(resolv); (err == nil) != (statErr == nil) {
		t.Errorf("%s changed: before %v, after %v", resolv, statErr, err)
	}
}
