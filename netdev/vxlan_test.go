package netdev

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/router/fastdp"
)

// inNetns runs fn with the calling goroutine's thread in the named
// namespace; the thread goes back afterwards (or is discarded).
func inNetns(t *testing.T, name string, fn func()) {
	t.Helper()
	target, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		orig.Close()
	}()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	fn()
}

// TestVXLANHeartbeatAndEntries builds two hosts joined by a veth, each
// with a bridge, a stand-in TAP and the fast path device, and checks that
// a heartbeat crosses the kernel's VXLAN and that entries are installed,
// listed and removed.
func TestVXLANHeartbeatAndEntries(t *testing.T) {
	e := newEnv(t)
	other := fmt.Sprintf("weftvx%d", os.Getpid())
	e.addNetns(other)
	e.ipHost("link", "add", "und0", "type", "veth", "peer", "name", "und1", "netns", other)
	e.ipHost("addr", "add", "192.0.2.1/24", "dev", "und0")
	e.ipHost("link", "set", "und0", "up")
	e.run("ip", "-n", other, "addr", "add", "192.0.2.2/24", "dev", "und1")
	e.run("ip", "-n", other, "link", "set", "und1", "up")
	e.run("ip", "-n", other, "link", "set", "lo", "up")
	const nameA, nameB mesh.PeerName = 0xa, 0xb
	open := func(ns string, self mesh.PeerName) *VXLAN {
		var v *VXLAN
		inNetns(t, ns, func() {
			if err := EnsureBridge(testBridge, 1400); err != nil {
				t.Fatal(err)
			}
			e.run("ip", "-n", ns, "link", "add", "faketap", "type", "veth", "peer", "name", "faketap1")
			if err := AttachToBridge("faketap", testBridge, 1400); err != nil {
				t.Fatal(err)
			}
			var err error
			v, err = OpenVXLAN(VXLANConfig{Name: "weftvx", Bridge: testBridge, TAP: "faketap", Port: 6784, VNI: 77, MTU: 1400, HeartbeatMAC: fastdp.HeartbeatMAC(self)})
			if err != nil {
				t.Fatal(err)
			}
		})
		t.Cleanup(func() { v.Close() })
		return v
	}
	va, vb := open(e.host, nameA), open(other, nameB)
	if out := e.run("ip", "-n", e.host, "-d", "link", "show", "weftvx"); !bytes.Contains([]byte(out), []byte("isolated on")) || !bytes.Contains([]byte(out), []byte("df set")) {
		t.Errorf("device not isolated or DF not set:\n%s", out)
	}
	addrB := netip.MustParseAddr("192.0.2.2")
	inNetns(t, e.host, func() {
		if err := va.Install(fastdp.Entry{MAC: fastdp.HeartbeatMAC(nameB), Dst: addrB}, true); err != nil {
			t.Fatal(err)
		}
		container := fastdp.MAC{2, 0, 0, 0, 0, 0xb}
		if err := va.Install(fastdp.Entry{MAC: container, Dst: addrB}, false); err != nil {
			t.Fatal(err)
		}
		ents, err := va.Entries()
		if err != nil {
			t.Fatal(err)
		}
		got := map[fastdp.MAC]netip.Addr{}
		for _, en := range ents {
			got[en.MAC] = en.Dst
		}
		if got[container] != addrB || got[fastdp.HeartbeatMAC(nameB)] != addrB || len(got) != 2 {
			t.Errorf("entries %v", got)
		}
		if err := va.Remove(fastdp.Entry{MAC: container, Dst: addrB}); err != nil {
			t.Fatal(err)
		}
		if err := va.Remove(fastdp.Entry{MAC: container, Dst: addrB}); err != nil {
			t.Errorf("removing a missing entry: %v", err)
		}
		if ents, _ := va.Entries(); len(ents) != 1 {
			t.Errorf("after Remove: %v", ents)
		}
	})
	frame := make([]byte, 1414) // the full size the MTU allows
	copy(frame[0:6], func() []byte { m := fastdp.HeartbeatMAC(nameB); return m[:] }())
	copy(frame[6:12], func() []byte { m := fastdp.HeartbeatMAC(nameA); return m[:] }())
	frame[12], frame[13], frame[14] = 0x88, 0xb5, 1
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 2000)
		n, err := vb.Receive(buf)
		if err == nil {
			got <- buf[:n]
		}
	}()
	deadline := time.After(5 * time.Second)
	for {
		inNetns(t, e.host, func() {
			if err := va.Send(frame); err != nil {
				t.Fatal(err)
			}
		})
		select {
		case f := <-got:
			if !bytes.Equal(f, frame) {
				t.Fatalf("received %d bytes, not the heartbeat sent", len(f))
			}
			return
		case <-deadline:
			t.Fatalf("no heartbeat through the VXLAN device within 5s\nA:\n%s\nB:\n%s\n%s", e.run("ip", "-n", e.host, "-s", "-d", "link", "show", "weftvx"),
				e.run("ip", "-n", other, "-s", "-d", "link", "show", "weftvx"), e.run("bridge", "-n", e.host, "fdb", "show", "dev", "weftvx"))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
