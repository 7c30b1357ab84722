package integration

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/test/netns"
)

// TestSpoofedHeartbeat is issue 16's item 3, built from
// docs/protocol-data.md alone: h1 and h2 run without a password; h2 dialled
// h1, so h1 learned h2's data address from its heartbeats. A stranger on
// h3 (no router) takes one of h2's heartbeats from a capture of h1's
// underlay (the ConnUID travels in the clear) and forges heartbeats with it
// in h2's name from its own address, every 5 ms, while c1 pings c2. h1 must
// keep sending to h2: every ping answered, nothing but path challenges
// (at most one a second) reaches h3, and the forgeries are counted in
// drop_unknown_sender.
func TestSpoofedHeartbeat(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 3)
	h1, h2, h3 := w.Hosts[0], w.Hosts[1], w.Hosts[2]
	h1.Launch(t)
	h2.Launch(t, h1.PeerAddr())
	c1 := h1.AddContainer(t, "c1", "10.2.9.1/24")
	c2 := h2.AddContainer(t, "c2", "10.2.9.2/24")
	c1.WaitPing(t, c2.IP, pingTimeout)

	// One heartbeat from h2 to h1 (slow heartbeats come every 2 s).
	var hb []byte
	netns.Eventually(t, 15*time.Second, "a heartbeat from h2 in h1's capture", func() error {
		pcap := capture(t, h1, h2, func() { time.Sleep(2500 * time.Millisecond) })
		hb = findHeartbeat(pcap, h2.Addr)
		if hb == nil {
			return fmt.Errorf("no heartbeat from %s in %d bytes", h2.Addr, len(pcap))
		}
		return nil
	})

	sock := nsUDP(t, h3.Name, netns.DefaultPort)
	var heard atomic.Int64
	go func() {
		buf := make([]byte, 65535)
		for {
			n, _, err := sock.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			// A path challenge (type 5) carries only a nonce that h3
			// cannot echo over h2's control connection.
			if n < 2 || buf[1] != 5 {
				heard.Add(1)
			}
		}
	}()
	dropped := rawReportOf(t, h1).Router.Stats["drop_unknown_sender"]

	// Forge: the captured heartbeat with later counters, from h3.
	to := netip.AddrPortFrom(netip.MustParseAddr(h1.Addr), uint16(netns.DefaultPort))
	stop := make(chan struct{})
	sent := make(chan int)
	go func() {
		n := 0
		forged := append([]byte(nil), hb...)
		for {
			select {
			case <-stop:
				sent <- n
				return
			case <-time.After(5 * time.Millisecond):
			}
			n++
			binary.BigEndian.PutUint64(forged[12:], binary.BigEndian.Uint64(hb[12:])+uint64(n))
			sock.WriteToUDPAddrPort(forged, to)
		}
	}()
	got, out := pingCount(c1, c2.IP, 200)
	close(stop)
	n := <-sent
	if got < 198 {
		t.Errorf("c1 -> c2 during the forgery: %d of 200 pings answered\n%s", got, out)
	}
	if h := heard.Load(); h != 0 {
		t.Errorf("h3 received %d datagrams other than path challenges", h)
	}
	if d := rawReportOf(t, h1).Router.Stats["drop_unknown_sender"] - dropped; d < uint64(n)/2 {
		t.Errorf("drop_unknown_sender went up by %d for %d forged heartbeats", d, n)
	}
}

// findHeartbeat returns the UDP payload of the first heartbeat (version 1,
// type 2, unsealed, 44 bytes) from src in an Ethernet pcap, or nil.
func findHeartbeat(pcap []byte, src string) []byte {
	from := net.ParseIP(src).To4()
	for off := 24; off+16 <= len(pcap); {
		n := int(binary.LittleEndian.Uint32(pcap[off+8:]))
		rec := pcap[off+16 : min(off+16+n, len(pcap))]
		off += 16 + n
		if len(rec) < 14+20 || binary.BigEndian.Uint16(rec[12:]) != 0x0800 {
			continue
		}
		ip := rec[14:]
		ihl := int(ip[0]&0x0f) * 4
		if ip[9] != unix.IPPROTO_UDP || !net.IP(ip[12:16]).Equal(from) || len(ip) < ihl+8 {
			continue
		}
		if p := ip[ihl+8:]; len(p) == 44 && p[0] == 1 && p[1] == 2 && p[2]&1 == 0 {
			return p
		}
	}
	return nil
}

// nsUDP opens a UDP socket bound to port inside namespace ns. The socket
// stays in ns; the thread that entered it ends with its goroutine.
func nsUDP(t *testing.T, ns string, port int) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := netns.Inside(ns, func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{Port: port})
		return err
	}); err != nil {
		t.Fatalf("udp socket in %s: %v", ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestPathChangeConfirmed: the other side of source binding. h2 dialled h1
// without a password; then h2's datagrams start leaving from another
// address (a route with another source, as after a NAT rebinding) while
// its control connection stays. h1 must follow once h2 echoes its path
// challenge over the control connection: c2 reaches c1 again within
// seconds, long before the heartbeat timeout would reconnect them.
func TestPathChangeConfirmed(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 2)
	h1, h2 := w.Hosts[0], w.Hosts[1]
	h1.Launch(t)
	h2.Launch(t, h1.PeerAddr())
	c1 := h1.AddContainer(t, "c1", "10.2.10.1/24")
	c2 := h2.AddContainer(t, "c2", "10.2.10.2/24")
	c2.WaitPing(t, c1.IP, pingTimeout)

	moved := netns.UnderlayPrefix + ".52"
	h2.MustRun(t, "ip", "addr", "add", moved+"/24", "dev", "eth0")
	h2.MustRun(t, "ip", "route", "replace", h1.Addr+"/32", "dev", "eth0", "src", moved)
	start := time.Now()
	// Slow heartbeats come every 2 s: the first from the new address
	// starts the challenge, and the path moves one round trip later.
	c2.WaitPing(t, c1.IP, 8*time.Second)
	t.Logf("c2 reaches c1 %v after the move", time.Since(start).Round(time.Millisecond))
	if got, out := pingCount(c2, c1.IP, 50); got < 49 {
		t.Errorf("c2 -> c1 after the move: %d of 50 answered\n%s", got, out)
	}
}
