package netdev

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"

	"github.com/weftnet/weft/internal/segment"
)

// Source guard: an attached target may send only with the MAC of its
// ethweft and, for IPv4 and ARP, only from the addresses weft gave it.
// The rule runs at the host end's ingress (what the target sends), as the
// port filters do (portfilter.go), in place of the default rule:
//
//	source MAC other than ethweft's                    drop
//	IPv4 whose source is not one of the addresses      drop
//	ARP whose sender MAC is not ethweft's, or whose
//	  sender IP is neither 0.0.0.0 (a probe) nor one
//	  of the addresses                                 drop
//	802.1Q / 802.1ad tagged frames (could hide either) drop
//	anything else (IPv6 among it: MAC checked only)    pass
//
// Offsets count from the Ethernet header: the source MAC is at 6, the
// EtherType at 12, an IPv4 source at 26, an ARP sender MAC at 22 and its
// sender IP at 28. A load past the end of a frame would end the program
// with 0, which in direct-action mode is TC_ACT_OK (pass): the program
// checks the length first (14 bytes at least, 34 for IPv4, 42 for ARP)
// and drops shorter frames.

// EtherTypes the guard tells apart.
const (
	etherTypeIPv4   = 0x0800
	etherTypeARP    = 0x0806
	etherTypeVLAN   = 0x8100
	etherTypeQinQ   = 0x88a8
	maxGuardedAddrs = 64 // keeps every jump within the 8-bit offsets of classic BPF
)

// asmIns is an instruction whose jumps name labels.
type asmIns struct {
	ins      bpf.Instruction
	jt, jf   string // labels of a conditional jump's targets ("" = next)
	to       string // label of an unconditional jump
	label    string // this instruction's own label
	cond     bpf.JumpTest
	val      uint32
	isJumpIf bool
}

// assemble resolves the labels of prog into a program.
func assemble(prog []asmIns) []bpf.Instruction {
	at := map[string]int{}
	for i, p := range prog {
		if p.label != "" {
			at[p.label] = i
		}
	}
	skip := func(from int, label string) uint8 {
		if label == "" {
			return 0
		}
		return uint8(at[label] - from - 1)
	}
	out := make([]bpf.Instruction, len(prog))
	for i, p := range prog {
		switch {
		case p.isJumpIf:
			out[i] = bpf.JumpIf{Cond: p.cond, Val: p.val, SkipTrue: skip(i, p.jt), SkipFalse: skip(i, p.jf)}
			continue
		case p.to != "":
			out[i] = bpf.Jump{Skip: uint32(skip(i, p.to))}
			continue
		}
		out[i] = p.ins
	}
	return out
}

func load(off, size uint32) asmIns { return asmIns{ins: bpf.LoadAbsolute{Off: off, Size: int(size)}} }
func jeq(val uint32, jt, jf string) asmIns {
	return asmIns{isJumpIf: true, cond: bpf.JumpEqual, val: val, jt: jt, jf: jf}
}
func loadLen() asmIns { return asmIns{ins: bpf.LoadExtension{Num: bpf.ExtLen}} }
func jge(val uint32, jt, jf string) asmIns {
	return asmIns{isJumpIf: true, cond: bpf.JumpGreaterOrEqual, val: val, jt: jt, jf: jf}
}
func ja(label string) asmIns { return asmIns{to: label} }
func ret(label string, verdict uint32) asmIns {
	return asmIns{ins: bpf.RetConstant{Val: verdict}, label: label}
}

// guardFilter is the port filter of a guarded attachment: peer's MAC and
// the IPv4 addresses of addrs.
func guardFilter(peer netlink.Link, addrs []netip.Prefix) (portFilter, error) {
	var sources []netip.Addr
	for _, p := range addrs {
		if a := p.Addr(); a.Is4() && !slices.Contains(sources, a) {
			sources = append(sources, a)
		}
	}
	if len(sources) > maxGuardedAddrs {
		return portFilter{}, fmt.Errorf("source guard: %d addresses (at most %d)", len(sources), maxGuardedAddrs)
	}
	return portFilter{seg: segment.Default, own: peer.Attrs().HardwareAddr, guard: true, sources: sources}, nil
}

// guardProgram is the ingress program of a guarded port: own is the
// target's ethweft MAC, addrs its addresses (IPv4 ones count; at most
// maxGuardedAddrs).
func guardProgram(own net.HardwareAddr, addrs []netip.Addr) []bpf.Instruction {
	hi, lo := binary.BigEndian.Uint32(own[0:4]), uint32(binary.BigEndian.Uint16(own[4:6]))
	var v4 []uint32
	for _, a := range addrs {
		if a.Is4() && len(v4) < maxGuardedAddrs {
			b := a.As4()
			v4 = append(v4, binary.BigEndian.Uint32(b[:]))
		}
	}
	p := []asmIns{
		loadLen(), jge(14, "", "drop"),
		load(6, 4), jeq(hi, "", "drop"),
		load(10, 2), jeq(lo, "", "drop"),
		load(12, 2),
		jeq(etherTypeIPv4, "ipv4", ""),
		jeq(etherTypeARP, "arp", ""),
		jeq(etherTypeVLAN, "drop", ""),
		jeq(etherTypeQinQ, "drop", "pass"),
	}
	ipv4 := loadLen()
	ipv4.label = "ipv4"
	// anyOf passes when the loaded address is one of v4, else drops.
	anyOf := func(p []asmIns) []asmIns {
		for _, a := range v4 {
			p = append(p, jeq(a, "pass", ""))
		}
		return append(p, ja("drop"))
	}
	p = anyOf(append(p, ipv4, jge(34, "", "drop"), load(26, 4)))
	arp := loadLen()
	arp.label = "arp"
	p = anyOf(append(p, arp, jge(42, "", "drop"), load(22, 4), jeq(hi, "", "drop"), load(26, 2), jeq(lo, "", "drop"), load(28, 4), jeq(0, "pass", "")))
	p = append(p, ret("pass", verdictPass), ret("drop", verdictDrop))
	return assemble(p)
}
