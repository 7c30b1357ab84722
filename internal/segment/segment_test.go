package segment

import (
	"net/netip"
	"testing"
)

func TestMACRoundTrip(t *testing.T) {
	seg := ForSubnet(netip.MustParsePrefix("10.1.1.0/24"))
	if seg == Default {
		t.Fatal("a subnet got the default segment")
	}
	if ForSubnet(netip.MustParsePrefix("10.1.1.7/24")) != seg {
		t.Fatal("host bits changed the segment")
	}
	mac := MAC(seg, netip.MustParseAddr("10.1.1.5"))
	if got := Of(mac); got != seg {
		t.Fatalf("Of(%s) = %d, want %d", mac, got, seg)
	}
	if mac[0]&1 != 0 || mac[0]&2 == 0 {
		t.Fatalf("%s is not a locally administered unicast MAC", mac)
	}
	if mac[3] != 1 || mac[4] != 1 || mac[5] != 5 {
		t.Fatalf("%s does not end in the address's low bytes", mac)
	}
	if p := Prefix(seg); p>>16 != Marker || uint16(p) != seg {
		t.Fatalf("Prefix(%d) = %#x", seg, p)
	}
}

func TestRandomMACNeverMarked(t *testing.T) {
	for range 5000 {
		mac := RandomMAC()
		if Of(mac) != Default || mac[0]&1 != 0 || mac[0]&2 == 0 {
			t.Fatalf("RandomMAC gave %s", mac)
		}
	}
	if Of(MAC(Default, netip.MustParseAddr("10.0.0.1"))) != Default {
		t.Fatal("a default-segment MAC carries the marker")
	}
}

func TestSegmentsSpread(t *testing.T) {
	seen := map[uint16]string{}
	collisions := 0
	for i := range 256 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16)
		s := ForSubnet(p)
		if _, ok := seen[s]; ok {
			collisions++
		}
		seen[s] = p.String()
	}
	// 256 subnets over 65535 segments: about 0.5 collisions expected.
	if collisions > 4 {
		t.Fatalf("%d collisions among 256 subnets", collisions)
	}
}
