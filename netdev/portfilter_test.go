package netdev

import (
	"net"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/weftnet/weft/internal/segment"
)

// TestPortFilterPrograms runs the programs in x/net/bpf's VM on frames
// with each kind of source MAC.
func TestPortFilterPrograms(t *testing.T) {
	mac := func(s string) net.HardwareAddr {
		m, err := net.ParseMAC(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	segA := uint16(0x1234)
	own := mac("7a:12:34:00:00:05")
	br := mac("02:aa:bb:cc:dd:ee")
	def := portFilter{seg: segment.Default}
	seg := portFilter{seg: segA, own: own, bridge: br}
	tests := []struct {
		name string
		f    portFilter
		src  string
		in   bool // passes ingress
		out  bool // passes egress
	}{
		{"default, plain MAC", def, "02:00:00:00:00:01", true, true},
		{"default, the bridge", def, "02:aa:bb:cc:dd:ee", true, true},
		{"default, a segment MAC", def, "7a:12:34:00:00:05", false, false},
		{"default, the marker on segment 0", def, "7a:00:00:00:00:01", false, false},
		{"default, marker-like byte", def, "7b:12:34:00:00:05", true, true},
		{"segment, own MAC", seg, "7a:12:34:00:00:05", true, true},
		{"segment, own MAC but the last byte", seg, "7a:12:34:00:00:06", false, true},
		{"segment, own MAC but the fifth byte", seg, "7a:12:34:00:01:05", false, true},
		{"segment, another segment", seg, "7a:12:35:00:00:05", false, false},
		{"segment, segment bytes elsewhere", seg, "7b:12:34:00:00:05", false, false},
		{"segment, the bridge", seg, "02:aa:bb:cc:dd:ee", false, true},
		{"segment, the bridge but the last byte", seg, "02:aa:bb:cc:dd:ef", false, false},
		{"segment, the bridge but the first byte", seg, "03:aa:bb:cc:dd:ee", false, false},
		{"segment, plain MAC", seg, "02:00:00:00:00:01", false, false},
	}
	for _, tt := range tests {
		ingress, egress := tt.f.programs()
		frame := append(append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac(tt.src)...), 0x08, 0x06, 0, 1)
		for _, side := range []struct {
			prog []bpf.Instruction
			want bool
			name string
		}{{ingress, tt.in, "ingress"}, {egress, tt.out, "egress"}} {
			vm, err := bpf.NewVM(side.prog)
			if err != nil {
				t.Fatalf("%s %s: %v", tt.name, side.name, err)
			}
			v, err := vm.Run(frame)
			if err != nil || (uint32(v) != verdictPass && uint32(v) != verdictDrop) {
				t.Fatalf("%s %s: verdict %d, %v", tt.name, side.name, v, err)
			}
			if got := uint32(v) == verdictPass; got != side.want {
				t.Errorf("%s: %s passes = %v, want %v", tt.name, side.name, got, side.want)
			}
		}
	}
}

func TestOpsHandle(t *testing.T) {
	a, _ := portFilter{seg: 1, own: net.HardwareAddr{0x7a, 0, 1, 0, 0, 1}, bridge: net.HardwareAddr{2, 0, 0, 0, 0, 1}}.programs()
	b, _ := portFilter{seg: 1, own: net.HardwareAddr{0x7a, 0, 1, 0, 0, 2}, bridge: net.HardwareAddr{2, 0, 0, 0, 0, 1}}.programs()
	opsA, err := encodeOps(a)
	if err != nil {
		t.Fatal(err)
	}
	opsA2, _ := encodeOps(a)
	opsB, _ := encodeOps(b)
	if opsHandle(opsA) != opsHandle(opsA2) || opsHandle(opsA) == opsHandle(opsB) || opsHandle(opsA) == 0 {
		t.Errorf("handles: %x %x %x", opsHandle(opsA), opsHandle(opsA2), opsHandle(opsB))
	}
}
