package router

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// ipFrame builds an Ethernet frame with an IPv4 or IPv6 header and, for
// TCP and UDP, the two ports.
func ipFrame(src, dst netip.Addr, proto byte, sport, dport uint16, fragOff uint16) []byte {
	var f []byte
	if src.Is4() {
		f = make([]byte, EthernetHeaderLen+20+8)
		binary.BigEndian.PutUint16(f[12:], 0x0800)
		ip := f[EthernetHeaderLen:]
		ip[0], ip[9] = 0x45, proto
		binary.BigEndian.PutUint16(ip[6:], fragOff)
		copy(ip[12:16], src.AsSlice())
		copy(ip[16:20], dst.AsSlice())
		binary.BigEndian.PutUint16(ip[20:], sport)
		binary.BigEndian.PutUint16(ip[22:], dport)
		return f
	}
	f = make([]byte, EthernetHeaderLen+40+8)
	binary.BigEndian.PutUint16(f[12:], 0x86dd)
	ip := f[EthernetHeaderLen:]
	ip[0], ip[6] = 0x60, proto
	copy(ip[8:24], src.AsSlice())
	copy(ip[24:40], dst.AsSlice())
	binary.BigEndian.PutUint16(ip[40:], sport)
	binary.BigEndian.PutUint16(ip[42:], dport)
	return f
}

func TestFlowQueueSameBothWays(t *testing.T) {
	a4, b4 := netip.MustParseAddr("10.2.1.1"), netip.MustParseAddr("10.2.1.2")
	a6, b6 := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	for _, n := range []int{2, 3, 4, 8} {
		for port := uint16(1000); port < 1100; port++ {
			for _, p := range [][2]netip.Addr{{a4, b4}, {a6, b6}} {
				for _, proto := range []byte{6, 17} {
					there := flowQueue(ipFrame(p[0], p[1], proto, port, 5201, 0), n)
					back := flowQueue(ipFrame(p[1], p[0], proto, 5201, port, 0), n)
					if there != back || there < 0 || there >= n {
						t.Fatalf("n=%d %v port %d proto %d: queue %d there, %d back", n, p, port, proto, there, back)
					}
				}
			}
		}
	}
}

func TestFlowQueueSpreads(t *testing.T) {
	a, b := netip.MustParseAddr("10.2.1.1"), netip.MustParseAddr("10.2.1.2")
	for _, n := range []int{2, 4} {
		count := make([]int, n)
		for port := uint16(40000); port < 40256; port++ {
			count[flowQueue(ipFrame(a, b, 6, port, 5201, 0), n)]++
		}
		for q, c := range count {
			if c < 256/n/2 {
				t.Errorf("n=%d: queue %d got %d of 256 flows: %v", n, q, c, count)
			}
		}
	}
}

func TestFlowQueueFragmentsStayTogether(t *testing.T) {
	a, b := netip.MustParseAddr("10.2.1.1"), netip.MustParseAddr("10.2.1.2")
	first := ipFrame(a, b, 17, 1234, 53, 0x2000) // more fragments, offset 0
	later := ipFrame(a, b, 17, 0xdead, 0xbeef, 185)
	for n := 2; n <= 8; n++ {
		if flowQueue(first, n) != flowQueue(later, n) {
			t.Fatalf("n=%d: fragments of one packet on queues %d and %d", n, flowQueue(first, n), flowQueue(later, n))
		}
	}
}

func TestFlowQueueOddFrames(t *testing.T) {
	arp := make([]byte, 42)
	binary.BigEndian.PutUint16(arp[12:], 0x0806)
	short4 := ipFrame(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), 6, 1, 2, 0)[:EthernetHeaderLen+10]
	short6 := ipFrame(netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2"), 6, 1, 2, 0)[:EthernetHeaderLen+30]
	bad := ipFrame(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), 6, 1, 2, 0)
	bad[EthernetHeaderLen] = 0x4f // IHL past the frame
	for i, f := range [][]byte{nil, arp, arp[:10], short4, short6, bad} {
		if q := flowQueue(f, 4); q < 0 || q >= 4 {
			t.Fatalf("frame %d: queue %d", i, q)
		}
	}
	if q := flowQueue(arp, 4); q != 0 {
		t.Fatalf("ARP on queue %d, want 0", q)
	}
}

func FuzzFlowQueue(f *testing.F) {
	f.Add(ipFrame(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), 6, 1, 2, 0), 4)
	f.Add(ipFrame(netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2"), 17, 1, 2, 0), 3)
	f.Fuzz(func(t *testing.T, fr []byte, n int) {
		if n < 1 || n > 256 {
			return
		}
		if q := flowQueue(fr, n); q < 0 || q >= n {
			t.Fatalf("queue %d of %d", q, n)
		}
	})
}

// sinkQueues is a MultiQueue of sink devices.
type sinkQueues struct {
	*sinkDevice
	all []*sinkDevice
}

func (s sinkQueues) ReadQueues() []Device {
	out := make([]Device, len(s.all))
	for i, d := range s.all {
		out[i] = d
	}
	return out
}

func TestWriteByQueueNoAllocs(t *testing.T) {
	qs := sinkQueues{all: []*sinkDevice{{mtu: 1500}, {mtu: 1500}, {mtu: 1500}}}
	qs.sinkDevice = qs.all[0]
	r, err := New(Config{Self: peerA, Device: qs, Transport: &pipeTransport{}})
	if err != nil {
		t.Fatal(err)
	}
	a, b := netip.MustParseAddr("10.2.1.1"), netip.MustParseAddr("10.2.1.2")
	var frames [][]byte
	for port := range uint16(30) {
		frames = append(frames, append(make([]byte, 4), ipFrame(a, b, 17, 1000+port, 53, 0)...))
	}
	st := new(counters)
	r.writeDevice(st, frames, 4)
	total := 0
	for i, d := range qs.all {
		if d.frames == 0 {
			t.Errorf("queue %d got no frame of 30 flows", i)
		}
		total += d.frames
	}
	if total != 30 || st.tapFramesOut.Load() != 30 {
		t.Fatalf("%d frames written (%d counted), want 30", total, st.tapFramesOut.Load())
	}
	if allocs := testing.AllocsPerRun(50, func() { r.writeDevice(st, frames, 4) }); allocs != 0 {
		t.Fatalf("writing by queue allocates %v times", allocs)
	}
}
