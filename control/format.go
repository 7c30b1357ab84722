package control

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Views are the sub-views of `weft status`.
var Views = []string{"peers", "connections", "targets", "dns", "ipam"}

// FormatStatus renders the summary printed by `weft status`.
func FormatStatus(r *Report) string {
	var b strings.Builder
	row := func(k, format string, args ...any) {
		fmt.Fprintf(&b, "%15s: %s\n", k, fmt.Sprintf(format, args...))
	}
	row("Version", "%s (protocol %s)", r.Version, r.Protocol)
	row("Name", "%s(%s)", r.Router.Name, r.Router.NickName)
	if r.Router.Encryption {
		row("Encryption", "on")
	} else {
		row("Encryption", "off (no password: anyone who reaches this router's port can join; docs/security.md)")
	}
	if r.Router.FastDPPort > 0 {
		fast := 0
		for _, c := range r.Router.Connections {
			if c.Path == "fastdp" {
				fast++
			}
		}
		row("FastDP", "on (UDP %d; %d connections on it)", r.Router.FastDPPort, fast)
	} else {
		row("FastDP", "off (all traffic in userspace)")
	}
	row("PeerDiscovery", "%s", onOff(r.Router.PeerDiscovery))
	if r.Router.TrustedSubnets != "" {
		row("TrustedSubnets", "%s", r.Router.TrustedSubnets)
	}
	if len(r.Router.Targets) == 0 {
		row("Targets", "0")
	} else {
		row("Targets", "%d (%s)", len(r.Router.Targets), strings.Join(r.Router.Targets, " "))
	}
	row("Connections", "%s", connectionSummary(r.Router.Connections))
	established := 0
	for _, p := range r.Router.Peers {
		for _, c := range p.Connections {
			if c.Established {
				established++
			}
		}
	}
	row("Peers", "%d (with %d established connections)", len(r.Router.Peers), established)
	if len(r.Router.Paths) > 0 {
		row("Reachable", "%s", pathSummary(r.Router.Paths))
	}
	row("Bridge", "%s (MTU %d)", r.Router.Bridge, r.Router.MTU)
	row("Offloads", "%s", offloadSummary(r.Router.Offloads))
	row("Attached", "%d targets", len(r.Attachments))
	if len(r.Exposed) > 0 {
		row("Exposed", "%s", strings.Join(r.Exposed, " "))
	}
	if r.IPAM != nil {
		row("IPAM", "%s, range %s, default subnet %s", r.IPAM.State, r.IPAM.Range, r.IPAM.DefaultSubnet)
	}
	if r.DNS != nil {
		row("DNS", "%s on %s, %d entries", r.DNS.Domain, r.DNS.Address, len(r.DNS.Entries))
	} else {
		row("DNS", "disabled")
	}
	if r.Proxy != nil {
		tcp := ""
		if r.Proxy.Addr != "" {
			tcp = " and tcp://" + r.Proxy.Addr + " (TLS)"
		}
		row("DockerProxy", "unix://%s%s to %s (eval $(weft env) to use it)", r.Proxy.Socket, tcp, r.Proxy.Docker)
	}
	for _, w := range Warnings(r) {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}

// pathSummary counts the other peers by how they are reached: "2 of 2
// peers connected directly", then those relayed and unreachable.
func pathSummary(paths []PeerPath) string {
	n := map[string]int{}
	for _, p := range paths {
		n[p.Path]++
	}
	s := fmt.Sprintf("%d of %d peers connected directly", n[PathDirect], len(paths))
	if n[PathRelayed] > 0 {
		s += fmt.Sprintf(", %d relayed", n[PathRelayed])
	}
	if n[PathUnreachable] > 0 {
		s += fmt.Sprintf(", %d unreachable", n[PathUnreachable])
	}
	return s
}

// maxPeerWarnings bounds the lines about single peers in Warnings, so
// that a mesh flooded with made-up peers gives a summary, not thousands
// of lines.
const maxPeerWarnings = 10

// Warnings lists what a user should look at first, one line each: peers
// unreachable or relayed, connections refused (recently, or counted since
// start), name clashes, address conflicts. Empty when all is well.
func Warnings(r *Report) []string {
	var out []string
	more := 0
	for _, p := range r.Router.Paths {
		if p.Path != PathUnreachable && p.Path != PathRelayed {
			continue
		}
		if len(out) == maxPeerWarnings {
			more++
			continue
		}
		who := label(p.Peer, p.NickName)
		switch p.Path {
		case PathUnreachable:
			out = append(out, fmt.Sprintf("peer %s is unreachable ('weft doctor %s' says why)", who, p.Peer))
		case PathRelayed:
			out = append(out, fmt.Sprintf("peer %s is relayed via %s, not direct ('weft doctor %s' says why)", who, label(p.Via, p.ViaNickName), p.Peer))
		}
	}
	if more > 0 {
		out = append(out, fmt.Sprintf("and %d more peers unreachable or relayed ('weft doctor' lists them)", more))
	}
	reached := map[string]bool{}
	for _, p := range r.Router.Paths {
		reached[p.Peer] = p.Path != PathUnreachable
	}
	for _, c := range r.Router.Connections {
		switch {
		case c.State != "failed" && c.State != "retrying" || c.Reason == "":
		case isRefusalReason(c.Reason):
			out = append(out, fmt.Sprintf("connection %s %s refused: %s", dirWord(c.Outbound), c.Address, c.Reason))
		case c.Outbound && !reached[c.Peer]:
			out = append(out, fmt.Sprintf("cannot connect to %s: %s", c.Address, c.Reason))
		}
	}
	if refusalTotal(r.Router.Refusals) > 0 {
		out = append(out, "connections refused since start: "+refusalText(r.Router.Refusals))
	}
	if refusalTotal(r.Router.Forgeries) > 0 {
		out = append(out, "gossip dropped since start: "+refusalText(r.Router.Forgeries)+
			" (a member speaking for other peers or flooding the topology; the log names the connection)")
	}
	if r.Router.NameClashes > 0 {
		out = append(out, fmt.Sprintf("%d other router(s) seen using our peer name or a connected peer's: give each router its own state dir", r.Router.NameClashes))
	}
	if r.IPAM != nil {
		for _, p := range r.IPAM.Pools {
			if len(p.Conflicts) > 0 {
				out = append(out, fmt.Sprintf("%d address conflict(s) in pool %s ('weft status ipam')", len(p.Conflicts), p.Pool))
			}
		}
	}
	return out
}

func dirWord(outbound bool) string {
	if outbound {
		return "to"
	}
	return "from"
}

// offloadSummary lists the offloads in use, sorted, or "none".
func offloadSummary(m map[string]bool) string {
	var on []string
	for k, v := range m {
		if v {
			on = append(on, k)
		}
	}
	if len(on) == 0 {
		return "none"
	}
	slices.Sort(on)
	return strings.Join(on, " ")
}

func onOff(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

func connectionSummary(conns []Connection) string {
	counts := map[string]int{}
	for _, c := range conns {
		counts[c.State]++
	}
	if len(conns) == 0 {
		return "0"
	}
	var parts []string
	for _, s := range []string{"established", "pending", "connecting", "retrying", "failed"} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	return fmt.Sprintf("%d (%s)", len(conns), strings.Join(parts, ", "))
}

// FormatView renders one sub-view of `weft status`.
func FormatView(r *Report, view string) (string, error) {
	var b strings.Builder
	switch view {
	case "peers":
		nick := map[string]string{}
		for _, p := range r.Router.Peers {
			nick[p.Name] = p.NickName
		}
		for _, p := range r.Router.Peers {
			var links []string
			for _, c := range p.Connections {
				s := fmt.Sprintf("%s(%s)", c.Name, c.NickName)
				if !c.Established {
					s += "[pending]"
				}
				links = append(links, s)
			}
			sort.Strings(links)
			fmt.Fprintf(&b, "%s(%s) -> %s\n", p.Name, p.NickName, orNone(strings.Join(links, ", ")))
		}
	case "connections":
		for _, c := range r.Router.Connections {
			dir := "<-"
			if c.Outbound {
				dir = "->"
			}
			peer := "-"
			if c.Peer != "" {
				peer = fmt.Sprintf("%s(%s)", c.Peer, c.NickName)
			}
			enc := "unencrypted"
			if c.Encrypted {
				enc = "encrypted"
			}
			line := fmt.Sprintf("%s %-21s %-11s %s %s", dir, c.Address, c.State, peer, enc)
			if c.Path != "" {
				line += " " + c.Path
			}
			if c.MTU > 0 {
				line += fmt.Sprintf(" mtu=%d", c.MTU)
			}
			if c.Reason != "" {
				line += " " + c.Reason
			}
			if c.PathReason != "" {
				line += " (" + c.Path + ": " + c.PathReason + ")"
			}
			b.WriteString(line + "\n")
		}
	case "targets":
		for _, t := range r.Router.Targets {
			b.WriteString(t + "\n")
		}
	case "dns":
		if r.DNS == nil {
			return "", fmt.Errorf("DNS is disabled on this router")
		}
		for _, e := range r.DNS.Entries {
			peer := e.Peer
			if e.NickName != "" {
				peer += "(" + e.NickName + ")"
			}
			fmt.Fprintf(&b, "%-30s %-15s %s\n", e.Name, e.Address, peer)
		}
	case "ipam":
		if r.IPAM == nil {
			return "", fmt.Errorf("IP address management is not running on this router")
		}
		formatIPAM(&b, r.IPAM)
	default:
		return "", fmt.Errorf("unknown status view %q: choose one of %s", view, strings.Join(Views, ", "))
	}
	return b.String(), nil
}

func orNone(s string) string {
	if s == "" {
		return "(no connections)"
	}
	return s
}

// FormatPS renders `weft ps`: one line per target with MAC and addresses.
func FormatPS(atts []Attachment) string {
	var b strings.Builder
	for _, a := range atts {
		fmt.Fprintf(&b, "%s %s %s\n", a.Target, a.MAC, strings.Join(a.Addrs, " "))
	}
	return b.String()
}

// formatIPAM renders `weft status ipam`: the state, then per pool one line
// per peer that owns part of it (name(nickname), owned addresses and share,
// addresses in use, unreachable), then conflicts.
func formatIPAM(b *strings.Builder, r *IPAMReport) {
	fmt.Fprintf(b, "state: %s\n", r.State)
	fmt.Fprintf(b, "range: %s (default subnet %s)\n", r.Range, r.DefaultSubnet)
	for _, p := range r.Pools {
		fmt.Fprintf(b, "pool %s: %d addresses", p.Pool, p.Size)
		if p.SeededBy == "" {
			b.WriteString(", no ring yet\n")
			continue
		}
		fmt.Fprintf(b, ", %d held here, %d ranges, seeded by %s at %s\n", p.Held, p.Tokens, p.SeededBy, p.SeededAt)
		for _, s := range p.Peers {
			name := s.Name
			if s.NickName != "" {
				name += "(" + s.NickName + ")"
			}
			note := ""
			switch {
			case s.Self:
				note = "  this router"
			case !s.Reachable:
				note = "  unreachable"
			}
			fmt.Fprintf(b, "  %-36s %9d addresses (%5.1f%%), %d in use%s\n", name, s.Owned, 100*s.Share, s.Used, note)
		}
		if p.Quarantined > 0 {
			fmt.Fprintf(b, "  %d addresses kept back while a separately seeded mesh's routers claim theirs\n", p.Quarantined)
		}
		for _, c := range p.Conflicts {
			peer := c.Peer
			if c.NickName != "" {
				peer += "(" + c.NickName + ")"
			}
			fmt.Fprintf(b, "  conflict: %s is held here by %s and on %s by %s; detach one of them\n", c.Addr, c.Here, peer, c.There)
		}
	}
}
