package router

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
	ipA  = net.IP{10, 32, 0, 1}
	ipB  = net.IP{10, 32, 0, 2}
)

// udpFrame builds an Ethernet/IPv4/UDP frame with a payload of n bytes.
func udpFrame(t testing.TB, n int, df bool, opts []layers.IPv4Option) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: 0x1234, Protocol: layers.IPProtocolUDP, SrcIP: ipA, DstIP: ipB, Options: opts}
	if df {
		ip.Flags = layers.IPv4DontFragment
	}
	udp := &layers.UDP{SrcPort: 1000, DstPort: 2000}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload(payload))
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFragNeeded(t *testing.T) {
	orig := udpFrame(t, 3000, true, nil)
	dst := make([]byte, 200)
	n, err := FragNeeded(dst, orig, 1400)
	if err != nil {
		t.Fatal(err)
	}
	p := gopacket.NewPacket(dst[:n], layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("decode: %v", el.Error())
	}
	eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	icmp := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if !bytes.Equal(eth.SrcMAC, macB) || !bytes.Equal(eth.DstMAC, macA) {
		t.Errorf("MACs not swapped: %v -> %v", eth.SrcMAC, eth.DstMAC)
	}
	if !ip.SrcIP.Equal(ipB) || !ip.DstIP.Equal(ipA) || ip.Protocol != layers.IPProtocolICMPv4 {
		t.Errorf("IP %v -> %v proto %v", ip.SrcIP, ip.DstIP, ip.Protocol)
	}
	if icmp.TypeCode != layers.CreateICMPv4TypeCode(3, 4) {
		t.Errorf("type/code %v", icmp.TypeCode)
	}
	if mtu := binary.BigEndian.Uint16(dst[EthernetHeaderLen+20+6:]); mtu != 1400 {
		t.Errorf("next-hop MTU %d", mtu)
	}
	if c := checksum(dst[EthernetHeaderLen : EthernetHeaderLen+20]); c != 0 {
		t.Errorf("IP checksum does not verify: %#x", c)
	}
	if c := checksum(dst[EthernetHeaderLen+20 : n]); c != 0 {
		t.Errorf("ICMP checksum does not verify: %#x", c)
	}
	// The quote is the original IP header and 8 bytes of its payload.
	quote := icmp.Payload
	if !bytes.Equal(quote, orig[EthernetHeaderLen:EthernetHeaderLen+28]) {
		t.Errorf("quote % x", quote)
	}
	if _, err := FragNeeded(dst[:40], orig, 1400); err == nil {
		t.Error("no error for a small buffer")
	}
	arp := make([]byte, 60)
	binary.BigEndian.PutUint16(arp[12:], 0x0806)
	if _, err := FragNeeded(dst, arp, 1400); err == nil {
		t.Error("no error for ARP")
	}
}

// fragmentAll fragments orig for mtu and returns the fragment frames.
func fragmentAll(t *testing.T, orig []byte, mtu int) [][]byte {
	t.Helper()
	var out [][]byte
	buf := make([]byte, MaxDatagram)
	for off := 0; ; {
		n, next, err := FragmentIPv4(buf, orig, mtu, off)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.Clone(buf[:n]))
		if next == 0 {
			return out
		}
		off = next
	}
}

func TestFragmentIPv4(t *testing.T) {
	lsrr := layers.IPv4Option{OptionType: 0x83, OptionLength: 7, OptionData: []byte{4, 10, 0, 0, 9}} // copied
	rr := layers.IPv4Option{OptionType: 0x07, OptionLength: 7, OptionData: []byte{4, 0, 0, 0, 0}}    // not copied
	tests := []struct {
		name    string
		payload int
		mtu     int
		opts    []layers.IPv4Option
	}{
		{"two pieces", 2000, 1400, nil},
		{"many pieces", 9000, 576, nil},
		{"odd mtu", 3001, 1003, nil},
		{"options", 3000, 1000, []layers.IPv4Option{lsrr, rr}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := udpFrame(t, tc.payload, false, tc.opts)
			origIP := gopacket.NewPacket(orig, layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			frags := fragmentAll(t, orig, tc.mtu)
			var data []byte
			for i, f := range frags {
				p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
				ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				if !ok {
					t.Fatalf("fragment %d does not decode", i)
				}
				last := i == len(frags)-1
				if int(ip.Length) > tc.mtu || int(ip.Length) != len(f)-EthernetHeaderLen {
					t.Errorf("fragment %d length %d (frame %d)", i, ip.Length, len(f))
				}
				if int(ip.FragOffset)*8 != len(data) {
					t.Errorf("fragment %d offset %d, want %d", i, int(ip.FragOffset)*8, len(data))
				}
				if got := ip.Flags&layers.IPv4MoreFragments != 0; got == last {
					t.Errorf("fragment %d MF=%v", i, got)
				}
				if !last && len(ip.Payload)%8 != 0 {
					t.Errorf("fragment %d payload %d not a multiple of 8", i, len(ip.Payload))
				}
				if ip.Id != origIP.Id || !ip.SrcIP.Equal(ipA) || !ip.DstIP.Equal(ipB) {
					t.Errorf("fragment %d header %+v", i, ip)
				}
				if c := checksum(f[EthernetHeaderLen : EthernetHeaderLen+int(ip.IHL)*4]); c != 0 {
					t.Errorf("fragment %d checksum does not verify", i)
				}
				if i > 0 && len(tc.opts) > 0 && (len(ip.Options) == 0 || ip.Options[0].OptionType != 0x83) {
					t.Errorf("fragment %d options %+v: want only the copied one", i, ip.Options)
				}
				data = append(data, ip.Payload...)
			}
			if !bytes.Equal(data, origIP.Payload) {
				t.Fatalf("reassembled %d bytes differ from the original %d", len(data), len(origIP.Payload))
			}
		})
	}
}

func TestFragmentAFragment(t *testing.T) {
	orig := udpFrame(t, 2000, false, nil)
	ip := orig[EthernetHeaderLen:]
	binary.BigEndian.PutUint16(ip[6:8], ipv4FlagMF|100) // offset 800, more follow
	frags := fragmentAll(t, orig, 1000)
	for i, f := range frags {
		ff := binary.BigEndian.Uint16(f[EthernetHeaderLen+6:])
		if ff&ipv4FlagMF == 0 {
			t.Errorf("fragment %d lost MF", i)
		}
		if i == 0 && ff&ipv4OffMask != 100 {
			t.Errorf("first fragment offset %d", ff&ipv4OffMask)
		}
	}
}

func TestFragmentErrors(t *testing.T) {
	orig := udpFrame(t, 2000, false, nil)
	buf := make([]byte, 3000)
	if _, _, err := FragmentIPv4(buf, orig, 20, 0); err == nil {
		t.Error("no error for an MTU below header+8")
	}
	if _, _, err := FragmentIPv4(buf, orig, 1000, 3); err == nil {
		t.Error("no error for an unaligned offset")
	}
	if _, _, err := FragmentIPv4(buf, orig[:30], 1000, 0); err == nil {
		t.Error("no error for a truncated packet")
	}
}

// onesSumWordByWord is the textbook ones' complement sum, 16 bits at a
// time with the carry folded back each step, that onesSum must equal.
func onesSumWordByWord(b []byte) uint16 {
	var sum uint32
	for ; len(b) >= 2; b = b[2:] {
		sum += uint32(b[0])<<8 | uint32(b[1])
		sum = sum&0xffff + sum>>16
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

func TestOnesSum(t *testing.T) {
	for _, b := range [][]byte{nil, {0}, {0xff}, {0xff, 0xff}, bytes.Repeat([]byte{0xff}, 65535), make([]byte, 1000),
		{0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0, 0xc7}} {
		if got, want := onesSum(b), onesSumWordByWord(b); got != want {
			t.Errorf("%d bytes: onesSum %#04x, word by word %#04x", len(b), got, want)
		}
	}
	if got := checksum([]byte{0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0, 0xc7}); got != 0xb861 {
		t.Errorf("checksum of the RFC 1071-style example header = %#04x, want 0xb861", got)
	}
}

func FuzzOnesSum(f *testing.F) {
	f.Add([]byte{1, 2, 3})
	f.Add(bytes.Repeat([]byte{0xff}, 17))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := onesSum(b), onesSumWordByWord(b); got != want {
			t.Fatalf("onesSum %#04x, word by word %#04x", got, want)
		}
	})
}
