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
	row("Targets", "%d", len(r.Router.Targets))
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
	return b.String()
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
