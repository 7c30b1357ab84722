package fastdp

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/mesh"
)

// fakeNet is an underlay of fake VXLAN devices: a frame sent through one
// goes to the device at the address its destination MAC's entry names,
// unless that direction is blocked or the frame exceeds the MTU.
type fakeNet struct {
	mu      sync.Mutex
	devs    map[netip.Addr]*fakeKernel
	blocked map[[2]netip.Addr]bool
	mtu     int // largest frame carried; 0: any
}

func newFakeNet() *fakeNet {
	return &fakeNet{devs: map[netip.Addr]*fakeKernel{}, blocked: map[[2]netip.Addr]bool{}}
}

func (n *fakeNet) block(from, to netip.Addr, on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.blocked[[2]netip.Addr{from, to}] = on
}

type fakeEntry struct {
	dst    netip.Addr
	static bool
}

// fakeKernel is one host's VXLAN device.
type fakeKernel struct {
	net     *fakeNet
	addr    netip.Addr
	mu      sync.Mutex
	entries map[MAC]fakeEntry
	inbox   [][]byte
	calls   []string // Install and Remove calls, in order
	failAll error    // returned by every call when set
	rx      chan []byte
	closed  chan struct{}
	once    sync.Once
}

var errFakeClosed = errors.New("fake device closed")

func (n *fakeNet) add(addr netip.Addr) *fakeKernel {
	k := &fakeKernel{net: n, addr: addr, entries: map[MAC]fakeEntry{}, rx: make(chan []byte, 64), closed: make(chan struct{})}
	n.mu.Lock()
	n.devs[addr] = k
	n.mu.Unlock()
	return k
}

func (k *fakeKernel) Entries() ([]Entry, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.failAll != nil {
		return nil, k.failAll
	}
	var out []Entry
	for mac, e := range k.entries {
		out = append(out, Entry{MAC: mac, Dst: e.dst})
	}
	return out, nil
}

func (k *fakeKernel) Install(e Entry, static bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.failAll != nil {
		return k.failAll
	}
	k.entries[e.MAC] = fakeEntry{dst: e.Dst, static: static}
	k.calls = append(k.calls, fmt.Sprintf("install %s %s static=%v", macString(e.MAC), e.Dst, static))
	return nil
}

func (k *fakeKernel) Remove(e Entry) error {
	mac := e.MAC
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.failAll != nil {
		return k.failAll
	}
	delete(k.entries, mac)
	k.calls = append(k.calls, "remove "+macString(mac))
	return nil
}

// learn adds an entry as the kernel does for a received frame.
func (k *fakeKernel) learn(mac MAC, dst netip.Addr) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.entries[mac] = fakeEntry{dst: dst}
}

func (k *fakeKernel) has(mac MAC) (netip.Addr, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.entries[mac]
	return e.dst, ok
}

func (k *fakeKernel) Send(frame []byte) error {
	k.mu.Lock()
	fail := k.failAll
	e, ok := k.entries[MAC(frame[0:6])]
	k.mu.Unlock()
	if fail != nil {
		return fail
	}
	n := k.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mtu > 0 && len(frame) > n.mtu {
		return errors.New("message too long")
	}
	if !ok || n.blocked[[2]netip.Addr{k.addr, e.dst}] {
		return nil // dropped, as the kernel does
	}
	if d := n.devs[e.dst]; d != nil {
		d.mu.Lock()
		d.inbox = append(d.inbox, append([]byte(nil), frame...))
		d.mu.Unlock()
		select {
		case d.rx <- append([]byte(nil), frame...):
		default:
		}
	}
	return nil
}

func (k *fakeKernel) Receive(buf []byte) (int, error) {
	select {
	case f := <-k.rx:
		return copy(buf, f), nil
	case <-k.closed:
		return 0, errFakeClosed
	}
}

func (k *fakeKernel) Close() error {
	k.once.Do(func() { close(k.closed) })
	return nil
}

// take returns and clears the frames received so far.
func (k *fakeKernel) take() [][]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	in := k.inbox
	k.inbox = nil
	return in
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// node is one manager on the fake network, stepped by hand.
type node struct {
	name mesh.PeerName
	addr netip.Addr
	k    *fakeKernel
	m    *Manager
}

func newNode(t *testing.T, n *fakeNet, clk *fakeClock, name mesh.PeerName, addr string) *node {
	t.Helper()
	a := netip.MustParseAddr(addr)
	k := n.add(a)
	m, err := New(Config{Self: name, Kernel: k, FrameSize: 1514, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &node{name: name, addr: a, k: k, m: m}
}

// round ticks every node, then delivers what their heartbeats carried.
func round(nodes ...*node) {
	for _, n := range nodes {
		n.m.tick()
	}
	for _, n := range nodes {
		for _, f := range n.k.take() {
			n.m.handle(f)
		}
	}
}

// connect registers a and b with each other under uid.
func connect(a, b *node, uid uint64) {
	a.m.Connect(b.name, uid, b.addr)
	b.m.Connect(a.name, uid, a.addr)
}
