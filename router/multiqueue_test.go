package router_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/weftnet/weft/router"
	"github.com/weftnet/weft/router/routertest"
)

// queuedDevice is a fake multi-queue device: the embedded Device is queue
// 0, through which the router writes; more are further queues to read.
type queuedDevice struct {
	*routertest.Device
	more []*routertest.Device
}

func (d queuedDevice) ReadQueues() []router.Device {
	qs := []router.Device{d.Device}
	for _, q := range d.more {
		qs = append(qs, q)
	}
	return qs
}

func (d queuedDevice) Close() error {
	errs := []error{d.Device.Close()}
	for _, q := range d.more {
		errs = append(errs, q.Close())
	}
	return errors.Join(errs...)
}

func TestEveryQueueIsRead(t *testing.T) {
	nw := routertest.NewNetwork(5)
	var queues []*routertest.Device
	a := routertest.StartNode(t, nw, 1, addr(1), 1406, func(c *router.Config) {
		fast(c)
		queues = []*routertest.Device{routertest.NewDevice(1406, 64), routertest.NewDevice(1406, 64)}
		c.Device = queuedDevice{Device: c.Device.(*routertest.Device), more: queues}
	})
	b := routertest.StartNode(t, nw, 2, addr(2), 1406, fast)
	ab, ba, err := routertest.Connect(a, b, 3)
	if err != nil {
		t.Fatal(err)
	}
	established(t, ab, ba)
	routertest.InstallRoutes(routertest.Graph{1: {2}, 2: {1}}, a, b)
	// b's MAC is learned at a from a broadcast, which a writes through
	// queue 0.
	b.Device.Inject(frame(bcast, mac(2), 60, 0))
	recv(t, a)
	for i, q := range append([]*routertest.Device{a.Device}, queues...) {
		f := frame(mac(2), mac(1), 500+i, byte(i))
		q.Inject(f)
		if got := recv(t, b); !bytes.Equal(got, f) {
			t.Fatalf("frame read from queue %d: b got %d bytes, want %d", i, len(got), len(f))
		}
	}
	// Frames without ports go to queue 0; UDP flows spread over the
	// queues, each flow on one.
	f := frame(mac(1), mac(2), 300, 9)
	b.Device.Inject(f)
	if got := recv(t, a); !bytes.Equal(got, f) {
		t.Fatalf("a got %d bytes, want %d", len(got), len(f))
	}
	all := append([]*routertest.Device{a.Device}, queues...)
	seen := map[uint16]int{} // source port -> queue
	for port := uint16(40000); port < 40032; port++ {
		for range 2 {
			b.Device.Inject(ipv4UDPFrame(mac(1), mac(2), port))
			q := recvAny(t, all)
			if prev, ok := seen[port]; ok && prev != q {
				t.Fatalf("flow from port %d written on queues %d and %d", port, prev, q)
			}
			seen[port] = q
		}
	}
	used := map[int]bool{}
	for _, q := range seen {
		used[q] = true
	}
	if len(used) < 2 {
		t.Fatalf("32 UDP flows were all written on one queue: %v", seen)
	}
}

// ipv4UDPFrame is an IPv4 UDP frame from 10.2.1.2:port to 10.2.1.1:5201.
func ipv4UDPFrame(dst, src []byte, port uint16) []byte {
	f := make([]byte, 14+20+8+20)
	copy(f, dst)
	copy(f[6:], src)
	f[12], f[13] = 0x08, 0x00
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	copy(ip[12:], []byte{10, 2, 1, 2, 10, 2, 1, 1})
	binary.BigEndian.PutUint16(ip[20:], port)
	binary.BigEndian.PutUint16(ip[22:], 5201)
	return f
}

// recvAny waits for a frame written on any of the devices and returns
// which.
func recvAny(t *testing.T, devs []*routertest.Device) int {
	t.Helper()
	deadline := time.After(wait)
	for {
		for i, d := range devs {
			select {
			case <-d.Delivered():
				return i
			default:
			}
		}
		select {
		case <-deadline:
			t.Fatal("no frame written on any queue")
		case <-time.After(time.Millisecond):
		}
	}
}

// socketGroup is a fake MultiSocket: it sends through the real transport
// but its own ReadBatch reads an idle socket, and it hands the router the
// idle socket first and the real one second, so that datagrams only
// arrive if every socket of ReadSockets is read.
type socketGroup struct {
	*routertest.Transport
	idle *routertest.Transport
}

func (g socketGroup) ReadBatch(d []router.Datagram) (int, error) { return g.idle.ReadBatch(d) }

func (g socketGroup) ReadSockets() []router.Transport {
	return []router.Transport{g.idle, g.Transport}
}

func (g socketGroup) Close() error {
	return errors.Join(g.idle.Close(), g.Transport.Close())
}

func TestEverySocketIsRead(t *testing.T) {
	nw := routertest.NewNetwork(6)
	a := routertest.StartNode(t, nw, 1, addr(1), 1406, func(c *router.Config) {
		fast(c)
		c.Transport = socketGroup{Transport: c.Transport.(*routertest.Transport), idle: nw.Transport(addr(9), 16)}
	})
	b := routertest.StartNode(t, nw, 2, addr(2), 1406, fast)
	ab, ba, err := routertest.Connect(a, b, 4)
	if err != nil {
		t.Fatal(err)
	}
	established(t, ab, ba) // heartbeats reached a through its second socket
	routertest.InstallRoutes(routertest.Graph{1: {2}, 2: {1}}, a, b)
	f := frame(bcast, mac(2), 100, 3)
	b.Device.Inject(f)
	if got := recv(t, a); !bytes.Equal(got, f) {
		t.Fatalf("a got %d bytes, want %d", len(got), len(f))
	}
}
