package mesh

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

func nick(s string) func(*Config) { return func(c *Config) { c.NickName = s } }

// refusedWith finds, in n's status, a connection entry for addr (or any
// address when addr is "") in state StateRetrying or StateFailed whose
// reason contains want.
func refusedWith(n *testNode, addr, want string) error {
	for _, cs := range n.Status().Connections {
		if (addr == "" || cs.Address == addr) && (cs.State == StateRetrying || cs.State == StateFailed) && strings.Contains(cs.Reason, want) {
			return nil
		}
	}
	return fmt.Errorf("%v: no connection refused with %q in %+v", n.NickName(), want, n.Status().Connections)
}

// NickName returns the node's nickname (for messages).
func (n *testNode) NickName() string { return n.cfg.NickName }

// A second router started with a name already in the mesh is refused
// by the peer it reaches, with the reason on both sides; the first keeps
// its connection.
func TestDuplicatePeerNameRefused(t *testing.T) {
	c := startNode(t, 3, nil)
	a := startNode(t, 1, nick("host-a"))
	b := startNode(t, 1, nick("host-b"))
	a.connect(t, c)
	eventually(t, converge, func() error { return directMesh(a, c) })
	b.connect(t, c)
	deadline := time.Now().Add(700 * time.Millisecond)
	for time.Now().Before(deadline) {
		cs, ok := c.conn(1)
		if !ok || cs.PeerNickName != "host-a" {
			t.Fatalf("c's connection to peer 1: %+v (ok %v), want host-a's", cs, ok)
		}
		if _, ok := a.conn(3); !ok {
			t.Fatal("a lost its connection to c")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The refused router shows why (retrying its target), and so does c
	// (a refused inbound connection).
	eventually(t, converge, func() error { return refusedWith(b, c.addr(), "duplicate peer name") })
	eventually(t, converge, func() error { return refusedWith(c, "", "duplicate peer name") })
	if _, ok := b.conn(3); ok {
		t.Fatal("b connected to c")
	}
}

// Two routers with the same name that reach each other refuse each other
// as duplicates, not as a connection to ourselves.
func TestDuplicatePeerNameBetweenTwins(t *testing.T) {
	a := startNode(t, 1, nick("host-a"))
	b := startNode(t, 1, nick("host-b"))
	a.connect(t, b)
	eventually(t, converge, func() error { return refusedWith(a, b.addr(), "duplicate peer name") })
	eventually(t, converge, func() error { return refusedWith(b, "", "duplicate peer name") })
}

// A restarted router (same name, same host and nickname, new UID) still
// replaces its old connection at once.
func TestRestartedPeerReplacesOldConnection(t *testing.T) {
	c := startNode(t, 3, nil)
	a := startNode(t, 1, nil)
	a.connect(t, c)
	eventually(t, converge, func() error { return directMesh(a, c) })
	// The new incarnation comes up before the old connection is noticed
	// as gone: stop a's goroutines without closing its sockets is not
	// possible, so start the new one first.
	a2 := startNode(t, 1, nil)
	a2.connect(t, c)
	eventually(t, converge, func() error {
		st := c.Status()
		for _, cs := range st.Connections {
			if cs.Peer == testName(1) && cs.State == StateEstablished {
				for _, p := range st.Peers {
					if p.Name == testName(1) && p.UID == a2.UID() {
						return nil
					}
				}
			}
		}
		return fmt.Errorf("c does not hold a2: %+v", st)
	})
}

// Two routers with one name, each connected to its own neighbour, whose
// neighbours then connect: neither raises its version above the other's
// for ever, and each neighbour keeps believing its own.
func TestDuplicatePeerNamesInTwoHalves(t *testing.T) {
	a := startNode(t, 1, nick("host-a"))
	b := startNode(t, 1, nick("host-b"))
	c := startNode(t, 3, nil)
	d := startNode(t, 4, nil)
	a.connect(t, c)
	b.connect(t, d)
	eventually(t, converge, func() error { return directMesh(a, c) })
	eventually(t, converge, func() error { return directMesh(b, d) })
	c.connect(t, d)
	eventually(t, converge, func() error { return directMesh(c, d) })
	va, vb := a.Status().Version, b.Status().Version
	uidOf := func(n *testNode, p PeerName) uint64 {
		for _, ps := range n.Status().Peers {
			if ps.Name == seqName(p) {
				return ps.UID
			}
		}
		return 0
	}
	deadline := time.Now().Add(700 * time.Millisecond)
	for time.Now().Before(deadline) {
		if u := uidOf(c, 1); u != a.UID() {
			t.Fatalf("c sees peer 1 as uid %x, want a's %x", u, a.UID())
		}
		if u := uidOf(d, 1); u != b.UID() {
			t.Fatalf("d sees peer 1 as uid %x, want b's %x", u, b.UID())
		}
		if err := routeIs(c, 1, 1); err != nil {
			t.Fatal(err)
		}
		if err := routeIs(d, 1, 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if na, nb := a.Status().Version, b.Status().Version; na > va+maxNameClashBumps+2 || nb > vb+maxNameClashBumps+2 {
		t.Fatalf("versions raced: a %d -> %d, b %d -> %d", va, na, vb, nb)
	}
}

// An entry of another router with our name raises our version at most
// maxNameClashBumps times; an old incarnation needs only one.
func TestNameClashBumpsBounded(t *testing.T) {
	n, err := NewNode(testConfig(1, newFakeOverlay()))
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		n.mu.Lock()
		v := n.version
		n.mu.Unlock()
		n.applyTopology(testConn(n), []peerEntry{signed(1, peerEntry{NickName: "twin", UID: n.UID() + 1, Version: v + 5})})
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	// Each allowed bump sets our version to the entry's + 1 = v + 6.
	if max := uint64(1 + maxNameClashBumps*6); n.version > max {
		t.Fatalf("version %d after 10 clashing entries, want at most %d", n.version, max)
	}
	if n.version < 7 {
		t.Fatalf("version %d: an old incarnation did not raise ours", n.version)
	}
}

func TestClosedByPeer(t *testing.T) {
	for _, tc := range []struct {
		text    string
		dup     bool
		refusal bool
		want    string
	}{
		{"duplicate peer name 00:00:00:00:00:01: already connected to \"a\"", true, true, "refused by peer: duplicate peer name 00:00:00:00:00:01: already connected to \"a\""},
		{"peer forgotten", false, false, "closed by peer: peer forgotten"},
		{"bad\nline\x00", false, false, "closed by peer: bad line "},
		{strings.Repeat("x", 1000), false, false, "closed by peer: " + strings.Repeat("x", maxCloseReason)},
	} {
		err := closedByPeer([]byte(tc.text))
		if got := errors.Is(err, ErrDuplicateName); got != tc.dup {
			t.Errorf("%q: duplicate %v", tc.text, got)
		}
		if got := isRefusal(err); got != tc.refusal {
			t.Errorf("%q: refusal %v", tc.text, got)
		}
		if err.Error() != tc.want {
			t.Errorf("%q: error %q, want %q", tc.text, err, tc.want)
		}
	}
}

// FuzzClosedByPeer: any close reason yields a bounded, printable, valid
// UTF-8 error that is a refusal only when it says duplicate peer name.
func FuzzClosedByPeer(f *testing.F) {
	f.Fuzz(func(t *testing.T, text []byte) {
		err := closedByPeer(text)
		s := err.Error()
		if len(s) > len("refused by peer: ")+4*maxCloseReason || !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
			t.Fatalf("close reason %q gave %q", text, s)
		}
		if isRefusal(err) != strings.HasPrefix(s, "refused by peer: "+ErrDuplicateName.Error()) {
			t.Fatalf("close reason %q: refusal %v for %q", text, isRefusal(err), s)
		}
	})
}
