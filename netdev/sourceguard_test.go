package netdev

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"
)

// ipv4Frame is an Ethernet frame from mac carrying an IPv4 header from src.
func ipv4Frame(mac net.HardwareAddr, src netip.Addr) []byte {
	f := append(append([]byte{2, 0, 0, 0, 0, 9}, mac...), 0x08, 0x00)
	ip := make([]byte, 20)
	ip[0] = 0x45
	s := src.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], []byte{10, 32, 0, 2})
	return append(f, ip...)
}

// arpFrame is an ARP request from mac whose sender is (sha, spa).
func arpFrame(mac, sha net.HardwareAddr, spa netip.Addr) []byte {
	f := append(append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac...), 0x08, 0x06)
	a := []byte{0, 1, 8, 0, 6, 4, 0, 1}
	a = append(a, sha...)
	s := spa.As4()
	a = append(a, s[:]...)
	a = append(a, 0, 0, 0, 0, 0, 0, 10, 32, 0, 2)
	return append(f, a...)
}

// TestGuardProgram runs the source guard in x/net/bpf's VM.
func TestGuardProgram(t *testing.T) {
	own, _ := net.ParseMAC("02:11:22:33:44:55")
	other, _ := net.ParseMAC("02:11:22:33:44:56")
	mine, mine2 := netip.MustParseAddr("10.32.0.5"), netip.MustParseAddr("10.40.0.9")
	theirs := netip.MustParseAddr("10.32.0.6")
	prog := guardProgram(own, []netip.Addr{mine, mine2, netip.MustParseAddr("fd00::1")})
	vlan := ipv4Frame(own, mine)
	binary.BigEndian.PutUint16(vlan[12:], etherTypeVLAN)
	ipv6 := append(append([]byte{2, 0, 0, 0, 0, 9}, own...), 0x86, 0xdd, 0x60, 0, 0, 0)
	tests := []struct {
		name  string
		frame []byte
		pass  bool
	}{
		{"IPv4 from its address", ipv4Frame(own, mine), true},
		{"IPv4 from its second address", ipv4Frame(own, mine2), true},
		{"IPv4 from another's address", ipv4Frame(own, theirs), false},
		{"IPv4 from 0.0.0.0", ipv4Frame(own, netip.IPv4Unspecified()), false},
		{"IPv4 from its address under another MAC", ipv4Frame(other, mine), false},
		{"IPv4 cut short of its source", ipv4Frame(own, mine)[:28], false},
		{"ARP from its address", arpFrame(own, own, mine), true},
		{"ARP probe (sender 0.0.0.0)", arpFrame(own, own, netip.IPv4Unspecified()), true},
		{"ARP claiming another's address", arpFrame(own, own, theirs), false},
		{"ARP with another sender MAC", arpFrame(own, other, mine), false},
		{"ARP from another MAC", arpFrame(other, other, mine), false},
		{"ARP cut short", arpFrame(own, own, mine)[:40], false},
		{"802.1Q tagged", vlan, false},
		{"IPv6 from its MAC", ipv6, true},
		{"IPv6 from another MAC", append(append([]byte{2, 0, 0, 0, 0, 9}, other...), 0x86, 0xdd, 0x60, 0, 0, 0), false},
		{"runt", own, false},
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		v, err := vm.Run(tt.frame)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if uint32(v) != verdictPass && uint32(v) != verdictDrop {
			t.Fatalf("%s: verdict %d (a load past the end would pass in the kernel)", tt.name, v)
		}
		if got := uint32(v) == verdictPass; got != tt.pass {
			t.Errorf("%s: passes = %v, want %v", tt.name, got, tt.pass)
		}
	}
}
