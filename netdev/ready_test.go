package netdev

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

func TestMarkReady(t *testing.T) {
	e := newEnv(t)
	c := e.container("r1")
	// readyIn runs Ready with the thread inside c, as a held process would.
	readyIn := func() bool {
		t.Helper()
		ns, err := netns.GetFromName(c.Name)
		if err != nil {
			t.Fatal(err)
		}
		defer ns.Close()
		var ready bool
		if err := inNamespace(ns, func() (err error) { ready, err = Ready(); return err }); err != nil {
			t.Fatalf("Ready in %s: %v", c.Name, err)
		}
		return ready
	}

	e.do(func() {
		err := MarkReady(c)
		if !errors.Is(err, ErrNotAttached) || !strings.Contains(err.Error(), "mark "+c.String()+" ready") {
			t.Errorf("MarkReady before Attach = %v, want ErrNotAttached with the operation", err)
		}
	})
	if readyIn() {
		t.Error("Ready without ethweft = true")
	}

	e.do(func() {
		if err := EnsureBridge(testBridge, 1400); err != nil {
			t.Fatal(err)
		}
		if _, err := Attach(testBridge, c, []netip.Prefix{pfx("10.42.0.1/24")}, 1400, AttachOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	if readyIn() {
		t.Error("Ready after Attach, before MarkReady = true")
	}
	for i := range 2 { // the second time finds it marked already
		e.do(func() {
			if err := MarkReady(c); err != nil {
				t.Fatalf("MarkReady #%d: %v", i+1, err)
			}
		})
	}
	if out := e.ipIn(c, "link", "show", ContainerIf); !strings.Contains(out, "alias "+ReadyAlias) {
		t.Errorf("ethweft in %s lacks alias %s:\n%s", c.Name, ReadyAlias, out)
	}
	if !readyIn() {
		t.Error("Ready after MarkReady = false")
	}
	// The host end keeps its own alias, which List relies on.
	if out := e.ipHost("link", "show", HostIfName(c)); !strings.Contains(out, "alias weft:"+c.String()) {
		t.Errorf("host end lost its alias:\n%s", out)
	}
}
