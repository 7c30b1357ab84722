package tap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// queueOffset is the headroom the queue tests read and write with.
const queueOffset = 32

// peerMAC and peerIP stand for a neighbour behind the TAP: the kernel
// sends it frames out of the TAP without asking ARP (a permanent
// neighbour entry), and the tests write frames from it.
var (
	peerMAC = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	peerIP  = [4]byte{10, 99, 0, 2}
	tapIP   = [4]byte{10, 99, 0, 1}
)

// openQueuesTest opens a TAP with the given queues in ns, brings it up
// with 10.99.0.1/24 and a permanent neighbour peerIP at peerMAC, and
// returns its devices and its MAC address.
func openQueuesTest(t *testing.T, ns *testNS, queues int) ([]*Device, net.HardwareAddr) {
	t.Helper()
	var devs []*Device
	var mac net.HardwareAddr
	ns.do(t, func() (err error) {
		devs, err = OpenOffloadQueues(tapName, 1400, true, queues)
		return err
	})
	t.Cleanup(func() {
		for _, d := range devs {
			d.Close()
		}
	})
	ns.exec(t, "ip", "link", "set", tapName, "up")
	ns.exec(t, "ip", "addr", "add", "10.99.0.1/24", "dev", tapName)
	ns.exec(t, "ip", "neigh", "replace", "10.99.0.2", "lladdr", peerMAC.String(), "dev", tapName, "nud", "permanent")
	ns.do(t, func() error {
		ifi, err := net.InterfaceByName(tapName)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		return nil
	})
	return devs, mac
}

// tunFlags asks the kernel for the flags of the TAP behind d (TUNGETIFF).
func tunFlags(t *testing.T, d *Device) uint16 {
	t.Helper()
	ifr, err := unix.NewIfreq("")
	if err != nil {
		t.Fatal(err)
	}
	var ioErr error
	if err := d.raw.Control(func(fd uintptr) {
		ioErr = unix.IoctlIfreq(int(fd), unix.TUNGETIFF, ifr)
	}); err != nil {
		t.Fatal(err)
	}
	if ioErr != nil {
		t.Fatalf("TUNGETIFF: %v", ioErr)
	}
	return ifr.Uint16()
}

type queuedFrame struct {
	queue int
	frame []byte
}

// readQueues reads every queue of devs at once and hands each frame read
// (a copy, and the index of its queue in devs) to see on the test
// goroutine, in each queue's order, until see reports done or 5 s have
// passed. Once done it goes on reading for a short grace period, so that
// see also meets frames beyond the ones it waited for.
func readQueues(t *testing.T, devs []*Device, see func(queue int, frame []byte) (done bool)) {
	t.Helper()
	frames := make(chan queuedFrame, 64)
	errs := make(chan error, len(devs))
	deadline := time.Now().Add(5 * time.Second)
	for q, d := range devs {
		if err := d.file.SetReadDeadline(deadline); err != nil {
			t.Fatal(err)
		}
		go func() {
			b, sizes := bufs(16, queueOffset+1600)
			for {
				n, err := d.Read(b, sizes, queueOffset)
				if err != nil {
					errs <- err
					return
				}
				for i := range n {
					frames <- queuedFrame{q, bytes.Clone(b[i][queueOffset : queueOffset+sizes[i]])}
				}
			}
		}()
	}
	done := false
	handle := func(f queuedFrame) {
		if see(f.queue, f.frame) && !done {
			done = true
			grace := time.Now().Add(200 * time.Millisecond)
			for _, d := range devs {
				d.file.SetReadDeadline(grace)
			}
		}
	}
	for running := len(devs); running > 0; {
		select {
		case f := <-frames:
			handle(f)
		case err := <-errs:
			running--
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("read: %v", err)
			}
		}
	}
	close(frames) // every reader has returned
	for f := range frames {
		handle(f)
	}
	if !done {
		t.Error("timed out waiting for frames")
	}
}

// flowPort is where the flow tests' datagrams go on peerIP.
const flowPort = 9

// flowDatagram recognises a datagram of sendFlows: to peerIP port
// flowPort with "weft", the flow and the sequence number as payload.
func flowDatagram(f []byte) (flow, seq int, ok bool) {
	if len(f) < 34 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[23] != unix.IPPROTO_UDP ||
		!bytes.Equal(f[30:34], peerIP[:]) {
		return 0, 0, false
	}
	udp := f[14+int(f[14]&0xf)*4:]
	if len(udp) < 14 || binary.BigEndian.Uint16(udp[2:]) != flowPort || !bytes.Equal(udp[8:12], []byte("weft")) {
		return 0, 0, false
	}
	return int(udp[12]), int(udp[13]), true
}

// flowSockets opens n UDP sockets in ns bound to tapIP, one flow each, and
// returns them with their ports.
func flowSockets(t *testing.T, ns *testNS, n int) (socks, ports []int) {
	t.Helper()
	t.Cleanup(func() {
		for _, s := range socks {
			unix.Close(s)
		}
	})
	ns.do(t, func() error {
		for range n {
			s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			socks = append(socks, s)
			if err := unix.Bind(s, &unix.SockaddrInet4{Addr: tapIP}); err != nil {
				return err
			}
			sa, err := unix.Getsockname(s)
			if err != nil {
				return err
			}
			ports = append(ports, sa.(*unix.SockaddrInet4).Port)
		}
		return nil
	})
	return socks, ports
}

// sendFlows sends perFlow datagrams on each socket, the flows interleaved.
func sendFlows(t *testing.T, socks []int, perFlow int) {
	t.Helper()
	to := &unix.SockaddrInet4{Port: flowPort, Addr: peerIP}
	for seq := range perFlow {
		for flow, s := range socks {
			if err := unix.Sendto(s, []byte{'w', 'e', 'f', 't', byte(flow), byte(seq)}, 0, to); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// readFlows reads what sendFlows sent on the queues of devs, checks that
// every datagram comes exactly once and each flow's in order on one
// queue, and returns the queue of each flow and the count per queue.
func readFlows(t *testing.T, devs []*Device, flows, perFlow int) (flowQueue map[int]int, perQueue []int) {
	t.Helper()
	flowQueue, next := map[int]int{}, map[int]int{}
	perQueue = make([]int, len(devs))
	total := 0
	readQueues(t, devs, func(q int, f []byte) bool {
		flow, seq, ok := flowDatagram(f)
		if !ok {
			return false
		}
		total++
		perQueue[q]++
		if fq, seen := flowQueue[flow]; !seen {
			flowQueue[flow] = q
		} else if q != fq {
			t.Errorf("flow %d: datagram %d on queue %d, earlier ones on queue %d", flow, seq, q, fq)
		}
		if seq != next[flow] {
			t.Errorf("flow %d: datagram %d after %d (lost, duplicated or reordered)", flow, seq, next[flow]-1)
		}
		next[flow] = seq + 1
		return total == flows*perFlow
	})
	if total != flows*perFlow || len(flowQueue) != flows {
		t.Errorf("read %d datagrams of %d flows, want %d of %d", total, len(flowQueue), flows*perFlow, flows)
	}
	return flowQueue, perQueue
}

func TestQueuesSpreadFlows(t *testing.T) {
	ns := newTestNS(t)
	devs, _ := openQueuesTest(t, ns, 2)
	if len(devs) != 2 {
		t.Fatalf("OpenOffloadQueues(2) returned %d devices", len(devs))
	}
	for q, d := range devs {
		if f := tunFlags(t, d); f&unix.IFF_MULTI_QUEUE == 0 || f&unix.IFF_VNET_HDR == 0 {
			t.Errorf("queue %d: tun flags %#x lack IFF_MULTI_QUEUE or IFF_VNET_HDR", q, f)
		}
		if d.Queues() != 2 || !d.VnetHdr() || !d.Offloads()["tap_multi_queue"] || !d.Offloads()["tap_tso"] {
			t.Errorf("queue %d: Queues() = %d, VnetHdr() = %v, Offloads() = %v", q, d.Queues(), d.VnetHdr(), d.Offloads())
		}
	}
	const flows, perFlow = 32, 8
	socks, _ := flowSockets(t, ns, flows)
	sendFlows(t, socks, perFlow)
	_, perQueue := readFlows(t, devs, flows, perFlow)
	t.Logf("datagrams per queue: %v", perQueue)
	for q, n := range perQueue {
		if n == 0 {
			t.Errorf("queue %d got no datagram; per queue %v", q, perQueue)
		}
	}
}

// TestQueueSteering shows the kernel's flow steering: once a frame of a
// flow is written on a queue, the kernel sends that flow's frames (both
// directions hash alike) out of the same queue.
func TestQueueSteering(t *testing.T) {
	ns := newTestNS(t)
	devs, mac := openQueuesTest(t, ns, 2)
	const flows, perFlow = 16, 4
	socks, ports := flowSockets(t, ns, flows)
	for _, w := range []int{1, 0} {
		replies := make([][]byte, flows)
		for i, port := range ports {
			udp := binary.BigEndian.AppendUint16(nil, flowPort)
			udp = binary.BigEndian.AppendUint16(udp, uint16(port))
			udp = append(udp, 0, 12, 0, 0, 'w', 'e', 'f', 't') // no checksum
			replies[i] = peerFrame(mac, unix.IPPROTO_UDP, udp)
		}
		if n, err := devs[w].Write(replies, queueOffset); n != flows || err != nil {
			t.Fatalf("Write on queue %d = %d, %v", w, n, err)
		}
		sendFlows(t, socks, perFlow)
		flowQueue, perQueue := readFlows(t, devs, flows, perFlow)
		if perQueue[w] != flows*perFlow {
			t.Errorf("after writing each flow's reply on queue %d, datagrams per queue %v; queue of each flow %v", w, perQueue, flowQueue)
		}
	}
}

// peerFrame is an IPv4 packet of protocol proto with payload l4 from
// peerMAC and peerIP to the TAP's address, with queueOffset bytes of
// zero headroom (an all-zero virtio-net header) in front.
func peerFrame(tapMAC net.HardwareAddr, proto byte, l4 []byte) []byte {
	b := make([]byte, queueOffset, queueOffset+14+20+len(l4))
	b = append(b, tapMAC...)
	b = append(b, peerMAC...)
	b = append(b, 0x08, 0x00)
	ip := len(b)
	b = append(b, 0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0)
	binary.BigEndian.PutUint16(b[ip+2:], uint16(20+len(l4)))
	b = append(b, peerIP[:]...)
	b = append(b, tapIP[:]...)
	binary.BigEndian.PutUint16(b[ip+10:], checksum(b[ip:]))
	return append(b, l4...)
}

// echoRequest is an ICMP echo request from the peer to the TAP.
func echoRequest(tapMAC net.HardwareAddr, id uint16) []byte {
	icmp := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), 0, 1}
	binary.BigEndian.PutUint16(icmp[2:], checksum(icmp))
	return peerFrame(tapMAC, unix.IPPROTO_ICMP, icmp)
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// echoReplyID returns the identifier of an ICMP echo reply to peerIP.
func echoReplyID(f []byte) (uint16, bool) {
	if len(f) < 34 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[23] != unix.IPPROTO_ICMP ||
		!bytes.Equal(f[30:34], peerIP[:]) {
		return 0, false
	}
	icmp := f[14+int(f[14]&0xf)*4:]
	if len(icmp) < 8 || icmp[0] != 0 {
		return 0, false
	}
	return binary.BigEndian.Uint16(icmp[4:]), true
}

// pingOn writes echo requests with the given identifiers on queue w and
// waits for every reply on any of devs; it returns the index in devs each
// reply came on, by identifier.
func pingOn(t *testing.T, w *Device, devs []*Device, tapMAC net.HardwareAddr, ids []uint16) map[uint16]int {
	t.Helper()
	reqs := make([][]byte, len(ids))
	for i, id := range ids {
		reqs[i] = echoRequest(tapMAC, id)
	}
	if n, err := w.Write(reqs, queueOffset); n != len(reqs) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	want := map[uint16]bool{}
	for _, id := range ids {
		want[id] = true
	}
	got := map[uint16]int{}
	readQueues(t, devs, func(q int, f []byte) bool {
		id, ok := echoReplyID(f)
		if !ok || !want[id] {
			return false
		}
		if _, dup := got[id]; dup {
			t.Errorf("echo reply %d read twice", id)
		}
		got[id] = q
		return len(got) == len(want)
	})
	return got
}

func TestQueueWrite(t *testing.T) {
	ns := newTestNS(t)
	devs, mac := openQueuesTest(t, ns, 2)
	ids := []uint16{101, 102, 103, 104, 105, 106, 107, 108}
	got := pingOn(t, devs[1], devs, mac, ids)
	if len(got) != len(ids) {
		t.Fatalf("echo replies to %d of %d requests written on queue 1: %v", len(got), len(ids), got)
	}
	t.Logf("queue of each echo reply, by identifier: %v", got)
}

func TestOneQueueIsOpenOffload(t *testing.T) {
	ns := newTestNS(t)
	d := openTestWith(t, ns, func() (*Device, error) {
		devs, err := OpenOffloadQueues(tapName, 1400, true, 1)
		if err == nil && len(devs) != 1 {
			t.Errorf("OpenOffloadQueues(1) returned %d devices", len(devs))
		}
		if len(devs) == 0 {
			return nil, err
		}
		return devs[0], err
	})
	if f := tunFlags(t, d); f&unix.IFF_MULTI_QUEUE != 0 || f&unix.IFF_VNET_HDR == 0 {
		t.Errorf("tun flags %#x: want IFF_VNET_HDR without IFF_MULTI_QUEUE", f)
	}
	if d.Queues() != 1 || d.Offloads()["tap_multi_queue"] || !d.Offloads()["tap_tso"] {
		t.Errorf("Queues() = %d, Offloads() = %v", d.Queues(), d.Offloads())
	}
	readBatchAndWrite(t, ns, d)
}

func TestCloseOneQueue(t *testing.T) {
	ns := newTestNS(t)
	devs, mac := openQueuesTest(t, ns, 2)
	if err := devs[0].Close(); err != nil {
		t.Fatal(err)
	}
	b, sizes := bufs(1, 2000)
	if _, err := devs[0].Read(b, sizes, queueOffset); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read on a closed queue: %v, want os.ErrClosed", err)
	}
	got := pingOn(t, devs[1], devs[1:], mac, []uint16{201, 202, 203, 204})
	if len(got) != 4 {
		t.Fatalf("with queue 0 closed, echo replies to %d of 4 requests: %v", len(got), got)
	}
	if out, err := exec.Command("ip", "-n", ns.name, "link", "show", tapName).CombinedOutput(); err != nil {
		t.Fatalf("with queue 1 open the interface is gone: %v: %s", err, out)
	}
	if err := devs[1].Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "-n", ns.name, "link", "show", tapName).CombinedOutput(); err == nil {
		t.Errorf("interface still there after closing every queue: %s", out)
	}
}

func TestMultiQueueRefused(t *testing.T) {
	ns := newTestNS(t)
	// A single-queue TAP of the same name makes the kernel refuse.
	single := openTest(t, ns)
	var err error
	ns.do(t, func() error {
		var devs []*Device
		devs, err = OpenOffloadQueues(tapName, 1400, true, 2)
		for _, d := range devs {
			d.Close()
		}
		return nil
	})
	if !errors.Is(err, ErrMultiQueue) {
		t.Fatalf("OpenOffloadQueues over a single-queue TAP: %v, want ErrMultiQueue", err)
	}
	t.Logf("refusal: %v", err)
	if f := tunFlags(t, single); f&unix.IFF_MULTI_QUEUE != 0 {
		t.Errorf("single-queue TAP's flags became %#x", f)
	}
}
