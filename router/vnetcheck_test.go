package router

import (
	"encoding/binary"
	"testing"
)

// mkVnet builds a virtio_net_hdr for the checks below.
func mkVnet(flags, gso uint8, hdrLen, gsoSize, csumStart, csumOff uint16) []byte {
	h := make([]byte, VnetHdrLen)
	h[0], h[1] = flags, gso
	binary.LittleEndian.PutUint16(h[2:], hdrLen)
	binary.LittleEndian.PutUint16(h[4:], gsoSize)
	binary.LittleEndian.PutUint16(h[6:], csumStart)
	binary.LittleEndian.PutUint16(h[8:], csumOff)
	return h
}

func TestVnetValid(t *testing.T) {
	frame := make([]byte, 1000)
	for _, tc := range []struct {
		name  string
		h     []byte
		frame []byte
		want  bool
	}{
		{"plain", mkVnet(0, 0, 0, 0, 0, 0), frame, true},
		{"partial checksum", mkVnet(vnetFlagNeedsCsum, 0, 0, 0, 34, 6), frame, true},
		{"data valid", mkVnet(vnetFlagDataValid, 0, 0, 0, 0, 0), frame, true},
		{"tso4", mkVnet(vnetFlagNeedsCsum, vnetGSOTCPv4, 54, 946, 34, 16), frame, true},
		{"tso6 ecn", mkVnet(vnetFlagNeedsCsum, vnetGSOTCPv6|vnetGSOECN, 74, 900, 54, 16), frame, true},
		{"checksum field ends at frame end", mkVnet(vnetFlagNeedsCsum, 0, 0, 0, 900, 98), frame, true},
		{"gso size = frame length", mkVnet(vnetFlagNeedsCsum, vnetGSOTCPv4, 54, 1000, 34, 16), frame, true},

		{"unknown flag", mkVnet(4, 0, 0, 0, 0, 0), frame, false},
		{"high flag", mkVnet(0x80|vnetFlagNeedsCsum, 0, 0, 0, 34, 6), frame, false},
		{"gso udp", mkVnet(vnetFlagNeedsCsum, 3, 42, 1000, 34, 6), frame, false},
		{"gso udp l4", mkVnet(vnetFlagNeedsCsum, 5, 42, 1000, 34, 6), frame, false},
		{"ecn alone", mkVnet(0, vnetGSOECN, 0, 0, 0, 0), frame, false},
		{"checksum past end", mkVnet(vnetFlagNeedsCsum, 0, 0, 0, 900, 99), frame, false},
		{"checksum start past end", mkVnet(vnetFlagNeedsCsum, 0, 0, 0, 65535, 0), frame, false},
		{"checksum offset huge", mkVnet(vnetFlagNeedsCsum, 0, 0, 0, 34, 65535), frame, false},
		{"checksum in ethernet header", mkVnet(vnetFlagNeedsCsum, 0, 0, 0, 2, 6), frame, false},
		{"hdr_len past end", mkVnet(0, 0, 1001, 0, 0, 0), frame, false},
		{"gso size zero", mkVnet(vnetFlagNeedsCsum, vnetGSOTCPv4, 54, 0, 34, 16), frame, false},
		{"gso size past frame", mkVnet(vnetFlagNeedsCsum, vnetGSOTCPv4, 54, 1001, 34, 16), frame, false},
		{"short header", make([]byte, VnetHdrLen-1), frame, false},
		{"runt frame", mkVnet(0, 0, 0, 0, 0, 0), make([]byte, EthernetHeaderLen-1), false},
		{"huge frame", mkVnet(0, 0, 0, 0, 0, 0), make([]byte, maxVnetFrame+1), false},
	} {
		if got := vnetValid(tc.h, tc.frame); got != tc.want {
			t.Errorf("%s: vnetValid = %v, want %v", tc.name, got, tc.want)
		}
	}
	h := mkVnet(vnetFlagNeedsCsum, vnetGSOTCPv4, 54, 1448, 34, 16)
	if allocs := testing.AllocsPerRun(100, func() { vnetValid(h, frame) }); allocs != 0 {
		t.Errorf("vnetValid allocates %v times", allocs)
	}
}

// FuzzVnetValid checks arbitrary headers against arbitrary frames: it must
// never panic, and a header it accepts must keep every offset the kernel
// will use inside the frame.
func FuzzVnetValid(f *testing.F) {
	f.Add(mkVnet(0, 0, 0, 0, 0, 0), make([]byte, 60))
	f.Add(mkVnet(vnetFlagNeedsCsum, vnetGSOTCPv4, 54, 1448, 34, 16), make([]byte, 3000))
	f.Add(mkVnet(vnetFlagNeedsCsum, 0, 0, 0, 59, 0), make([]byte, 60))
	f.Fuzz(func(t *testing.T, h, frame []byte) {
		if !vnetValid(h, frame) {
			return
		}
		n := len(frame)
		if n < EthernetHeaderLen || n > maxVnetFrame {
			t.Fatalf("accepted a %d-byte frame", n)
		}
		if int(binary.LittleEndian.Uint16(h[2:4])) > n {
			t.Fatalf("accepted hdr_len past the frame")
		}
		if h[0]&vnetFlagNeedsCsum != 0 {
			start, off := int(binary.LittleEndian.Uint16(h[6:8])), int(binary.LittleEndian.Uint16(h[8:10]))
			if start+off+2 > n || !completeChecksum(frame, start, off) {
				t.Fatalf("accepted checksum at %d+%d in %d bytes", start, off, n)
			}
		}
		if h[1] != vnetGSONone {
			if s := int(binary.LittleEndian.Uint16(h[4:6])); s == 0 || s > n {
				t.Fatalf("accepted gso_size %d for %d bytes", s, n)
			}
		}
	})
}
