package fastdp

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/mesh"
)

const (
	nameA mesh.PeerName = 0xa1
	nameB mesh.PeerName = 0xb2
	nameC mesh.PeerName = 0xc3
)

func pair(t *testing.T) (*fakeNet, *fakeClock, *node, *node) {
	t.Helper()
	n := newFakeNet()
	clk := &fakeClock{now: time.Unix(1000, 0)}
	a := newNode(t, n, clk, nameA, "192.0.2.1")
	b := newNode(t, n, clk, nameB, "192.0.2.2")
	connect(a, b, 7)
	return n, clk, a, b
}

// steps runs rounds, advancing the clock by the interval after each.
func steps(clk *fakeClock, k int, nodes ...*node) {
	for range k {
		round(nodes...)
		clk.advance(500 * time.Millisecond)
	}
}

func TestUpOnlyOnceHeartbeatsFlowBothWays(t *testing.T) {
	_, clk, a, b := pair(t)
	if a.m.Up(nameB) || b.m.Up(nameA) {
		t.Fatal("up before any heartbeat")
	}
	round(a, b) // both hear the other, neither knows it is heard
	if a.m.Up(nameB) || b.m.Up(nameA) {
		t.Fatal("up after one heartbeat each way: neither knows the other hears it")
	}
	if _, why, _ := a.m.PathStatus(nameB); !strings.Contains(why, "does not hear") {
		t.Errorf("reason %q", why)
	}
	steps(clk, 2, a, b)
	if !a.m.Up(nameB) || !b.m.Up(nameA) {
		t.Fatal("not up after heartbeats flowed both ways")
	}
	if up, why, ok := a.m.PathStatus(nameB); !up || !ok || why == "" {
		t.Errorf("PathStatus = %v %q %v", up, why, ok)
	}
	// The heartbeat entry is static, towards the peer's address.
	if dst, ok := a.k.has(HeartbeatMAC(nameB)); !ok || dst != b.addr {
		t.Errorf("heartbeat entry for B: %v %v", dst, ok)
	}
}

func TestOneWayBlockTakesBothEndsOffAndBack(t *testing.T) {
	n, clk, a, b := pair(t)
	steps(clk, 3, a, b)
	if !a.m.Up(nameB) || !b.m.Up(nameA) {
		t.Fatal("not up")
	}
	learned := MAC{2, 0, 0, 0, 0, 0xbb}
	a.k.learn(learned, b.addr) // a container's MAC behind B, learned by the kernel
	n.block(a.addr, b.addr, true)
	steps(clk, 6, a, b) // 3 s > Timeout
	if a.m.Up(nameB) || b.m.Up(nameA) {
		t.Fatalf("still up after blocking A→B: A %v B %v", a.m.Up(nameB), b.m.Up(nameA))
	}
	if _, ok := a.k.has(learned); ok {
		t.Error("the entry towards B survived B's fast path going down")
	}
	if _, ok := a.k.has(HeartbeatMAC(nameB)); !ok {
		t.Error("the heartbeat entry went: heartbeats could never come back")
	}
	if _, why, _ := b.m.PathStatus(nameA); !strings.Contains(why, "no fast path heartbeat for") {
		t.Errorf("B's reason %q", why)
	}
	n.block(a.addr, b.addr, false)
	steps(clk, 3, a, b)
	if !a.m.Up(nameB) || !b.m.Up(nameA) {
		t.Fatal("not back up after unblocking")
	}
}

func TestMissInstallsOnlyTowardsAnUpPeer(t *testing.T) {
	_, clk, a, b := pair(t)
	mac := MAC{2, 1, 2, 3, 4, 5}
	a.m.Miss(mac[:], nameB)
	a.m.drainMisses(clk.Now().UnixNano())
	if _, ok := a.k.has(mac); ok {
		t.Fatal("installed an entry towards a peer whose fast path is not up")
	}
	steps(clk, 3, a, b)
	for range 3 {
		a.m.Miss(mac[:], nameB)
	}
	a.m.Miss(mac[:], nameC) // not connected: ignored
	a.m.drainMisses(clk.Now().UnixNano())
	if dst, ok := a.k.has(mac); !ok || dst != b.addr {
		t.Fatalf("entry for missed MAC: %v %v", dst, ok)
	}
	installs := 0
	for _, c := range a.k.calls {
		if strings.Contains(c, macString(mac)) {
			installs++
			if !strings.HasSuffix(c, "static=false") {
				t.Errorf("a missed MAC's entry must be dynamic: %s", c)
			}
		}
	}
	if installs != 1 {
		t.Errorf("%d installs for three misses in one interval; want 1", installs)
	}
	if st := a.m.Stats(); st.Misses < 4 || st.HeartbeatsSent == 0 || st.HeartbeatsReceived == 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestReconcileRemovesWhatNoUpPeerAccountsFor(t *testing.T) {
	n := newFakeNet()
	clk := &fakeClock{now: time.Unix(1000, 0)}
	a := newNode(t, n, clk, nameA, "192.0.2.1")
	b := newNode(t, n, clk, nameB, "192.0.2.2")
	c := newNode(t, n, clk, nameC, "192.0.2.3")
	connect(a, b, 1)
	connect(a, c, 2)
	n.block(a.addr, c.addr, true) // C never comes up
	steps(clk, 3, a, b, c)
	if !a.m.Up(nameB) || a.m.Up(nameC) {
		t.Fatal("want B up, C down")
	}
	behindB, behindC, stranger := MAC{2, 0, 0, 0, 0, 0xb}, MAC{2, 0, 0, 0, 0, 0xc}, MAC{2, 0, 0, 0, 0, 0xd}
	a.k.learn(behindB, b.addr)
	a.k.learn(behindC, c.addr)
	a.k.learn(stranger, netip.MustParseAddr("198.51.100.9"))
	a.k.learn(MAC{2, 0, 0, 0, 0, 0xe}, netip.Addr{}) // bridge entry without a device entry
	a.m.tick()
	if _, ok := a.k.has(behindB); !ok {
		t.Error("removed an entry towards an up peer")
	}
	for _, m := range []MAC{behindC, stranger, {2, 0, 0, 0, 0, 0xe}} {
		if _, ok := a.k.has(m); ok {
			t.Errorf("kept %s", macString(m))
		}
	}
	if _, ok := a.k.has(HeartbeatMAC(nameC)); !ok {
		t.Error("removed the heartbeat entry of a connected peer that is down")
	}
	a.m.Disconnect(nameB, 99) // another connection's UID: ignored
	if !a.m.Up(nameB) {
		t.Fatal("a stale Disconnect took B off")
	}
	a.m.Disconnect(nameB, 1)
	if a.m.Up(nameB) {
		t.Fatal("still up after Disconnect")
	}
	a.m.tick()
	if _, ok := a.k.has(behindB); ok {
		t.Error("entry towards a disconnected peer kept")
	}
	if _, ok := a.k.has(HeartbeatMAC(nameB)); ok {
		t.Error("heartbeat entry of a disconnected peer kept")
	}
	if _, _, ok := a.m.PathStatus(nameB); ok {
		t.Error("status for a disconnected peer")
	}
}

func TestStaleOrForgedHeartbeatsIgnored(t *testing.T) {
	_, clk, a, b := pair(t)
	frame := make([]byte, 64)
	for _, hb := range []heartbeat{
		{dst: HeartbeatMAC(nameA), src: HeartbeatMAC(nameB), sender: nameB, uid: 8, hearsYou: true},   // other connection
		{dst: HeartbeatMAC(nameA), src: MAC{2, 9, 9, 9, 9, 9}, sender: nameB, uid: 7, hearsYou: true}, // src not B's
		{dst: HeartbeatMAC(nameC), src: HeartbeatMAC(nameB), sender: nameB, uid: 7, hearsYou: true},   // not to us
		{dst: HeartbeatMAC(nameA), src: HeartbeatMAC(nameC), sender: nameC, uid: 7, hearsYou: true},   // not connected
		{dst: HeartbeatMAC(nameA), src: HeartbeatMAC(nameA), sender: nameA, uid: 7, hearsYou: true},   // ourselves
	} {
		putHeartbeat(frame, hb)
		a.m.handle(frame)
	}
	b.m.tick()
	b.k.take()
	clk.advance(100 * time.Millisecond)
	a.m.tick()
	if a.m.Up(nameB) || a.m.Stats().HeartbeatsReceived != 0 {
		t.Fatalf("a forged heartbeat counted: %+v", a.m.Stats())
	}
}

func TestFrameTooBigForThePathNeverUp(t *testing.T) {
	n, clk, a, b := pair(t)
	n.mtu = 1000 // heartbeats are 1514 bytes: the path cannot carry full frames
	steps(clk, 4, a, b)
	if a.m.Up(nameB) {
		t.Fatal("up over a path that cannot carry full-sized frames")
	}
	if _, why, _ := a.m.PathStatus(nameB); !strings.Contains(why, "refused") {
		t.Errorf("reason %q", why)
	}
	if a.m.Stats().SendErrors == 0 {
		t.Error("no send error counted")
	}
}

func TestKernelErrorsAreCountedNotFatal(t *testing.T) {
	_, clk, a, b := pair(t)
	a.k.failAll = errors.New("netlink says no")
	steps(clk, 3, a, b)
	if a.m.Up(nameB) {
		t.Fatal("up without a heartbeat entry")
	}
	if a.m.Stats().Errors == 0 {
		t.Error("errors not counted")
	}
	a.k.failAll = nil
	steps(clk, 3, a, b)
	if !a.m.Up(nameB) {
		t.Fatal("did not recover once the device worked")
	}
}

func TestUpAndMissAllocateNothing(t *testing.T) {
	_, clk, a, b := pair(t)
	steps(clk, 3, a, b)
	mac := []byte{2, 1, 2, 3, 4, 5}
	if n := testing.AllocsPerRun(100, func() {
		if a.m.Up(nameB) {
			a.m.Miss(mac, nameB)
		}
		a.m.drainMisses(0)
	}); n != 0 {
		t.Errorf("%v allocations per Up+Miss", n)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	k := newFakeNet().add(netip.MustParseAddr("192.0.2.1"))
	for _, c := range []Config{
		{Kernel: k, FrameSize: 1514},
		{Self: nameA, FrameSize: 1514},
		{Self: nameA, Kernel: k, FrameSize: 10},
		{Self: nameA, Kernel: k, FrameSize: 70000},
	} {
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) = %v", c, err)
		}
	}
}

func TestRunHeartbeatsAndStops(t *testing.T) {
	n := newFakeNet()
	a := n.add(netip.MustParseAddr("192.0.2.1"))
	b := n.add(netip.MustParseAddr("192.0.2.2"))
	ma, err := New(Config{Self: nameA, Kernel: a, FrameSize: 100, Interval: 5 * time.Millisecond, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mb, err := New(Config{Self: nameB, Kernel: b, FrameSize: 100, Interval: 5 * time.Millisecond, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ma.Connect(nameB, 3, b.addr)
	mb.Connect(nameA, 3, a.addr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- ma.Run(ctx) }()
	go func() { done <- mb.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for !(ma.Up(nameB) && mb.Up(nameA)) {
		if time.Now().After(deadline) {
			t.Fatal("not up within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return")
		}
	}
}

func TestMovedRepointsOrRemoves(t *testing.T) {
	n := newFakeNet()
	clk := &fakeClock{now: time.Unix(1000, 0)}
	a := newNode(t, n, clk, nameA, "192.0.2.1")
	b := newNode(t, n, clk, nameB, "192.0.2.2")
	c := newNode(t, n, clk, nameC, "192.0.2.3")
	connect(a, b, 1)
	connect(a, c, 2)
	steps(clk, 3, a, b, c)
	mac := MAC{2, 0, 0, 0, 0, 0x42}
	a.m.Miss(mac[:], nameB)
	a.m.drainMisses(clk.Now().UnixNano())
	if dst, _ := a.k.has(mac); dst != b.addr {
		t.Fatalf("entry towards %v, want B", dst)
	}
	a.m.Moved(mac[:], nameC) // C is up too: the entry follows at once
	a.m.drainMisses(clk.Now().UnixNano())
	if dst, _ := a.k.has(mac); dst != c.addr {
		t.Fatalf("after moving to C: entry towards %v", dst)
	}
	a.m.Moved(mac[:], nameA) // now on this host: the entry goes
	a.m.tick()
	if dst, ok := a.k.has(mac); ok {
		t.Fatalf("entry towards %v kept for a MAC that is local now", dst)
	}
}
