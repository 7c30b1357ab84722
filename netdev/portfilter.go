package netdev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/segment"
)

// Port filters keep Docker networks apart on the one weft bridge. Every
// host end of a veth that weft makes gets a clsact qdisc with a filter on
// each side; "ingress" is what the target sends, "egress" what the
// bridge hands to the target. The router's TAP gets none: frames from
// other hosts are judged by the ports they leave through. The rules look
// at the source MAC only:
//
//	segment.Default (attach, Docker networks without a subnet):
//	  ingress: drop a source MAC with the marker (a target cannot pose as
//	           an endpoint of a Docker network)
//	  egress:  drop a source MAC with the marker
//	segment N (a Docker network endpoint):
//	  ingress: pass only the endpoint's own source MAC (no spoofing)
//	  egress:  pass a source MAC of segment N or the bridge's own MAC
//	           (the host: its ARP, DNS replies); drop the rest
//
// Each side's rules are one classic BPF program run by the cls_bpf
// classifier in direct-action mode: it returns TC_ACT_SHOT to drop and
// TC_ACT_UNSPEC to let the frame go on. Not u32 with gact actions: u32
// itself matches the source MAC fine (offsets count from the network
// header, so the MAC is at -8 and -4, at ingress and egress, for bridged
// frames and the host's own, ARP included: tried with mirred), but it
// can drop only through an action, and act_gact is missing from kernels
// built without it (CONFIG_NET_ACT_GACT, as on weft's test VMs), as are
// police, flower and matchall there. Direct-action cls_bpf needs no
// action module and no bpf() call (the classic program travels in the
// netlink message). It sees the frame from its Ethernet header on both
// sides, cls_bpf pushing the header back at ingress: the source MAC is
// at offset 6.
//
// A program's filter handle is a hash of its instructions, so a port
// whose rules are right is left alone, and new rules go in at the same
// priority before the old ones are deleted: while both are there a frame
// must pass both, so a port is never open in between.

// filterPrio is the priority of the port filters: first.
const filterPrio = 1

// Verdicts of a direct-action program.
const (
	verdictDrop = uint32(netlink.TC_ACT_SHOT)
	verdictPass = uint32(0xffffffff) // TC_ACT_UNSPEC: no verdict, go on
)

// portFilter is the rule set of one port.
type portFilter struct {
	seg     uint16
	own     net.HardwareAddr // the endpoint's MAC, for a segment or guarded port
	bridge  net.HardwareAddr // the bridge's MAC, for a segment port
	guard   bool             // segment.Default only: the source guard at ingress
	sources []netip.Addr     // a guarded port's addresses
}

// rule matches source MACs whose bytes 0..3 and 4..5, masked, equal hi
// and lo; the first rule that matches gives the verdict.
type rule struct {
	hi, hiMask uint32
	lo, loMask uint32
	verdict    uint32
}

func macIs(mac net.HardwareAddr, verdict uint32) rule {
	return rule{
		hi: binary.BigEndian.Uint32(mac[0:4]), hiMask: 0xffffffff,
		lo: uint32(binary.BigEndian.Uint16(mac[4:6])), loMask: 0xffff,
		verdict: verdict,
	}
}

// programs returns the classic BPF programs for ingress and egress.
func (f portFilter) programs() (ingress, egress []bpf.Instruction) {
	if f.seg == segment.Default {
		marker := rule{hi: segment.Marker << 24, hiMask: 0xff000000, verdict: verdictDrop}
		p := compile([]rule{marker}, verdictPass)
		if f.guard {
			// ethweft's MAC never carries the marker: the guard,
			// which passes only that MAC, drops marked ones too.
			return guardProgram(f.own, f.sources), p
		}
		return p, p
	}
	ingress = compile([]rule{macIs(f.own, verdictPass)}, verdictDrop)
	prefix := rule{hi: segment.Prefix(f.seg) << 8, hiMask: 0xffffff00, verdict: verdictPass}
	egress = compile([]rule{prefix, macIs(f.bridge, verdictPass)}, verdictDrop)
	return ingress, egress
}

// compile turns rules into a program that returns the verdict of the
// first rule that matches, or otherwise.
func compile(rules []rule, otherwise uint32) []bpf.Instruction {
	var p []bpf.Instruction
	for _, r := range rules {
		rest := uint8(1) // instructions of this rule after its first jump
		if r.loMask != 0 {
			rest += 3
		}
		p = append(p,
			bpf.LoadAbsolute{Off: 6, Size: 4},
			bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: r.hiMask},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: r.hi, SkipFalse: rest})
		if r.loMask != 0 {
			p = append(p,
				bpf.LoadAbsolute{Off: 10, Size: 2},
				bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: r.loMask},
				bpf.JumpIf{Cond: bpf.JumpEqual, Val: r.lo, SkipFalse: 1})
		}
		p = append(p, bpf.RetConstant{Val: r.verdict})
	}
	return append(p, bpf.RetConstant{Val: otherwise})
}

// setPortFilter gives the link a clsact qdisc and f's programs on both
// sides.
func setPortFilter(h *netlink.Handle, link netlink.Link, f portFilter) error {
	if err := ensureClsact(h, link); err != nil {
		return fmt.Errorf("port filter on %s: %w", link.Attrs().Name, err)
	}
	ingress, egress := f.programs()
	for _, side := range []struct {
		parent uint32
		prog   []bpf.Instruction
		name   string
	}{{netlink.HANDLE_MIN_INGRESS, ingress, "ingress"}, {netlink.HANDLE_MIN_EGRESS, egress, "egress"}} {
		if err := setProgram(h, link, side.parent, side.prog); err != nil {
			return fmt.Errorf("port filter on %s %s: %w", link.Attrs().Name, side.name, err)
		}
	}
	return nil
}

func ensureClsact(h *netlink.Handle, link netlink.Link) error {
	qdiscs, err := h.QdiscList(link)
	if err != nil {
		return fmt.Errorf("list qdiscs: %w", err)
	}
	for _, q := range qdiscs {
		if _, ok := q.(*netlink.Clsact); ok {
			return nil
		}
	}
	q := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{
		LinkIndex: link.Attrs().Index,
		Handle:    netlink.MakeHandle(0xffff, 0),
		Parent:    netlink.HANDLE_CLSACT,
	}}
	if err := h.QdiscAdd(q); err != nil {
		return fmt.Errorf("add clsact qdisc: %w", err)
	}
	return nil
}

// setProgram makes prog the one bpf filter at filterPrio under parent:
// added unless there, then the others at that priority deleted. Filters
// at other priorities are not weft's and stay.
func setProgram(h *netlink.Handle, link netlink.Link, parent uint32, prog []bpf.Instruction) error {
	ops, err := encodeOps(prog)
	if err != nil {
		return err
	}
	handle := opsHandle(ops)
	have, err := h.FilterList(link, parent)
	if err != nil {
		return fmt.Errorf("list filters: %w", err)
	}
	var stale []netlink.Filter
	present := false
	for _, f := range have {
		switch a := f.Attrs(); {
		case f.Type() != "bpf" || a.Priority != filterPrio:
		case a.Handle == handle:
			present = true
		default:
			stale = append(stale, f)
		}
	}
	if !present {
		if err := addOps(link.Attrs().Index, parent, handle, ops); err != nil {
			return err
		}
	}
	for _, f := range stale {
		if err := h.FilterDel(f); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delete old filter %x: %w", f.Attrs().Handle, err)
		}
	}
	return nil
}

// encodeOps assembles prog into the kernel's struct sock_filter array.
func encodeOps(prog []bpf.Instruction) ([]byte, error) {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("assemble port filter: %w", err)
	}
	ops := make([]byte, 0, 8*len(raw))
	for _, ins := range raw {
		ops = binary.NativeEndian.AppendUint16(ops, ins.Op)
		ops = append(ops, ins.Jt, ins.Jf)
		ops = binary.NativeEndian.AppendUint32(ops, ins.K)
	}
	return ops, nil
}

// opsHandle is the filter handle of a program: a hash, never 0.
func opsHandle(ops []byte) uint32 {
	h := fnv.New32a()
	h.Write(ops)
	return max(h.Sum32(), 1)
}

// addOps adds a direct-action cls_bpf filter running the classic program
// ops, for every protocol. The netlink package can only pass eBPF
// programs (by file descriptor), so the request is built here.
func addOps(index int, parent, handle uint32, ops []byte) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWTFILTER, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(&nl.TcMsg{
		Family:  nl.FAMILY_ALL,
		Ifindex: int32(index),
		Handle:  handle,
		Parent:  parent,
		Info:    netlink.MakeHandle(filterPrio, nl.Swap16(unix.ETH_P_ALL)),
	})
	req.AddData(nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated("bpf")))
	opts := nl.NewRtAttr(nl.TCA_OPTIONS, nil)
	opts.AddRtAttr(nl.TCA_BPF_OPS_LEN, nl.Uint16Attr(uint16(len(ops)/8)))
	opts.AddRtAttr(nl.TCA_BPF_OPS, ops)
	opts.AddRtAttr(nl.TCA_BPF_FLAGS, nl.Uint32Attr(nl.TCA_BPF_FLAG_ACT_DIRECT))
	req.AddData(opts)
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("add bpf filter: %w", err)
	}
	return nil
}
