package control

import (
	"fmt"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"
)

// `weft doctor`: the router gathers facts (its report, a ping to each
// peer, a look at its DNS server and upstream) into a DoctorInput, and
// Diagnose, a pure function, turns them into a verdict per peer with the
// one next step to try.

// DoctorRequest is the query of /doctor: one peer (name or nickname), or
// every peer when empty.
type DoctorRequest struct {
	Peer string `json:"peer,omitempty"`
}

// DoctorInput is what the router found, for Diagnose.
type DoctorInput struct {
	// Report is the router's report at the time of the checks.
	Report *Report
	// Peer limits the diagnosis to one peer's name; "" means every peer.
	Peer string
	// Pings are the outcomes of a ping to each peer checked, by name.
	Pings map[string]PingOutcome
	// DNS is what the DNS checks found.
	DNS DNSCheck
}

// PingOutcome is the outcome of one ping: Reply, or Error.
type PingOutcome struct {
	Reply *PingReply `json:"reply,omitempty"`
	Error string     `json:"error,omitempty"`
}

// DNSCheck is what the DNS checks found.
type DNSCheck struct {
	// Enabled is false when the router runs no DNS server.
	Enabled bool   `json:"enabled"`
	Domain  string `json:"domain,omitempty"`
	Address string `json:"address,omitempty"`
	// ServerError says why our server did not answer; "" when it did.
	ServerError string `json:"server_error,omitempty"`
	// Upstream lists the upstream resolvers; UpstreamError says why they
	// did not answer ("" when they did, in UpstreamSeconds).
	Upstream        []string `json:"upstream,omitempty"`
	UpstreamError   string   `json:"upstream_error,omitempty"`
	UpstreamSeconds float64  `json:"upstream_seconds,omitempty"`
	// Unanswered are records held (up to 3 per peer) whose name our
	// server did not answer with the record's address.
	Unanswered []DNSRecord `json:"unanswered,omitempty"`
}

// DoctorReport is the verdict of `weft doctor`.
type DoctorReport struct {
	// OK is true when nothing is wrong: Problems is empty.
	OK    bool            `json:"ok"`
	Peers []PeerDiagnosis `json:"peers"`
	DNS   DNSCheck        `json:"dns"`
	// Self is this router, name(nickname).
	Self string `json:"self"`
	// Notes are facts worth knowing that are not wrong.
	Notes []string `json:"notes,omitempty"`
	// Problems are what is wrong, one line each with its next step;
	// Warnings what may be wrong but does not fail the check.
	Problems []string `json:"problems"`
	Warnings []string `json:"warnings"`
}

// PeerDiagnosis is the verdict on one peer.
type PeerDiagnosis struct {
	Peer     string `json:"peer"`
	NickName string `json:"nickname,omitempty"`
	// OK is true when the peer is reachable over the direct path.
	OK        bool `json:"ok"`
	Reachable bool `json:"reachable"`
	// Path is PathDirect, PathRelayed or PathUnreachable; Via the relay.
	Path        string `json:"path"`
	Via         string `json:"via,omitempty"`
	ViaNickName string `json:"via_nickname,omitempty"`
	// WhyNotDirect explains a path that is not direct; NextStep is the
	// one thing to try.
	WhyNotDirect string `json:"why_not_direct,omitempty"`
	NextStep     string `json:"next_step,omitempty"`
	// PingPath is the path that answered the ping (PathDirect or
	// PathRelayed); PingError says why none did.
	PingPath           string  `json:"ping_path,omitempty"`
	PingError          string  `json:"ping_error,omitempty"`
	RTTSeconds         float64 `json:"rtt_seconds,omitempty"`
	ClockOffsetSeconds float64 `json:"clock_offset_seconds,omitempty"`
	// MTU and MTUVerified describe the direct connection's path MTU.
	MTU                 int     `json:"mtu,omitempty"`
	MTUVerified         bool    `json:"mtu_verified,omitempty"`
	HandshakeAgeSeconds float64 `json:"handshake_age_seconds,omitempty"`
	Encrypted           bool    `json:"encrypted,omitempty"`
	// DNSRecords is how many DNS records of this peer we hold.
	DNSRecords int `json:"dns_records"`
}

// Limits of the checks.
const (
	// MaxClockSkew is the clock offset beyond which doctor warns.
	MaxClockSkew = 1.0 // seconds
)

// Diagnose turns what the router found into a verdict. It is pure: the
// same input gives the same report.
func Diagnose(in DoctorInput) DoctorReport {
	r := in.Report
	out := DoctorReport{Self: label(r.Router.Name, r.Router.NickName), DNS: in.DNS, Peers: []PeerDiagnosis{}, Problems: []string{}, Warnings: []string{}}
	for _, p := range r.Router.Paths {
		if in.Peer != "" && p.Peer != in.Peer {
			continue
		}
		d := diagnosePeer(r, p, in.Pings[p.Peer])
		out.Peers = append(out.Peers, d)
		who := label(d.Peer, d.NickName)
		switch {
		case !d.Reachable:
			out.Problems = append(out.Problems, fmt.Sprintf("%s: unreachable: %s; next: %s", who, d.WhyNotDirect, d.NextStep))
		case !d.OK:
			out.Problems = append(out.Problems, fmt.Sprintf("%s: reachable, %s, not direct: %s; next: %s", who, pathText(d.Path, d.Via, d.ViaNickName), d.WhyNotDirect, d.NextStep))
		}
		if d.OK && d.MTU > 0 && !d.MTUVerified {
			out.Warnings = append(out.Warnings, fmt.Sprintf("%s: path MTU %d not verified by a probe yet (probes get no answer); large packets may be lost", who, d.MTU))
		}
		if math.Abs(d.ClockOffsetSeconds) > MaxClockSkew {
			out.Warnings = append(out.Warnings, fmt.Sprintf("%s: its clock is %+.1f s off ours; logs will not line up (run NTP on both hosts)", who, d.ClockOffsetSeconds))
		}
	}
	if in.Peer == "" {
		// Connections that failed to a peer not in the topology (the
		// handshake never completed, or the peer is not known yet): no
		// peer line above says why.
		known := map[string]bool{}
		for _, p := range r.Router.Paths {
			known[p.Peer] = true
		}
		for _, c := range r.Router.Connections {
			if (c.State != "failed" && c.State != "retrying") || c.Reason == "" || (c.Peer != "" && known[c.Peer]) {
				continue
			}
			why, next := classify(c.Reason, c.Address, r.Router.Port)
			out.Problems = append(out.Problems, fmt.Sprintf("connection %s %s failed: %s; next: %s", dirWord(c.Outbound), c.Address, why, next))
		}
		if len(r.Router.Paths) == 0 {
			out.Notes = append(out.Notes, "no other peer is known: connect one with 'weft connect HOST'")
		}
	}
	if r.Router.NameClashes > 0 {
		out.Warnings = append(out.Warnings, fmt.Sprintf("%d other router(s) seen using our peer name or a connected peer's; give each router its own state dir", r.Router.NameClashes))
	}
	if n := refusalTotal(r.Router.Refusals); n > 0 {
		out.Warnings = append(out.Warnings, "connections refused since start: "+refusalText(r.Router.Refusals))
	}
	if n := refusalTotal(r.Router.Forgeries); n > 0 {
		out.Warnings = append(out.Warnings, "gossip dropped since start: "+refusalText(r.Router.Forgeries)+
			" (a member speaking for other peers or flooding the topology; the log names the connection)")
	}
	if in.DNS.Enabled {
		if in.DNS.ServerError != "" {
			out.Problems = append(out.Problems, fmt.Sprintf("DNS: our server on %s does not answer: %s; next: check the router's log (weft.log in the state dir)", in.DNS.Address, in.DNS.ServerError))
		}
		for _, u := range in.DNS.Unanswered {
			out.Problems = append(out.Problems, fmt.Sprintf("DNS: our server does not answer %s with %s, a record of %s; next: check the router's log (weft.log in the state dir)", u.Name, u.Address, label(u.Peer, u.NickName)))
		}
		if in.DNS.UpstreamError != "" {
			out.Warnings = append(out.Warnings, fmt.Sprintf("DNS: upstream %s does not answer (%s): names outside %s will not resolve", strings.Join(in.DNS.Upstream, ", "), in.DNS.UpstreamError, in.DNS.Domain))
		}
	}
	out.OK = len(out.Problems) == 0
	return out
}

// diagnosePeer judges one peer from the report and its ping.
func diagnosePeer(r *Report, p PeerPath, ping PingOutcome) PeerDiagnosis {
	d := PeerDiagnosis{Peer: p.Peer, NickName: p.NickName, Path: p.Path, Via: p.Via, ViaNickName: p.ViaNickName}
	var dp *DataPath
	for i := range r.Router.DataPaths {
		if r.Router.DataPaths[i].Peer == p.Peer {
			dp = &r.Router.DataPaths[i]
		}
	}
	if dp != nil {
		d.MTU, d.MTUVerified, d.HandshakeAgeSeconds, d.Encrypted = dp.MTU, dp.MTUVerified, dp.HandshakeAgeSeconds, dp.Encrypted
		d.RTTSeconds = dp.RTTSeconds
	}
	if r.DNS != nil {
		for _, e := range r.DNS.Entries {
			if e.Peer == p.Peer {
				d.DNSRecords++
			}
		}
	}
	d.Reachable = p.Path != PathUnreachable
	switch {
	case ping.Reply != nil:
		d.Reachable = true
		d.PingPath, d.RTTSeconds, d.ClockOffsetSeconds = ping.Reply.Path, ping.Reply.RTTSeconds, ping.Reply.ClockOffsetSeconds
		if ping.Reply.Path == PathRelayed && d.Path == PathDirect {
			// The routes say direct, but the answer came through a relay:
			// the peer's route back to us is not direct.
			d.Path, d.Via, d.ViaNickName = PathRelayed, ping.Reply.AnsweredVia, ping.Reply.AnsweredViaNickName
		}
	case ping.Error != "":
		d.Reachable = false
		d.PingError = ping.Error
	}
	d.OK = d.Reachable && d.Path == PathDirect && dp != nil && dp.Established
	if d.OK {
		return d
	}
	d.WhyNotDirect, d.NextStep = whyNotDirect(r, p.Peer, dp, d.PingError)
	return d
}

// whyNotDirect explains why there is no established direct connection to
// peer, or why pings over it get no answer (pingErr), from the most
// telling fact the report holds.
func whyNotDirect(r *Report, peer string, dp *DataPath, pingErr string) (why, next string) {
	port := r.Router.Port
	addr := peerAddress(r, peer)
	if dp != nil && dp.Established && pingErr != "" {
		// The path was up a moment ago: heartbeats will time it out.
		return classify(fmt.Sprintf("the direct path is up but the ping got no answer (%s); last UDP heartbeat %s ago",
			pingErr, ago(dp.LastHeardSeconds)), firstNonEmpty(dp.Addr, addr), port)
	}
	// A connection to the peer refused for a reason its operator must fix.
	for _, c := range r.Router.Connections {
		if c.Peer == peer && c.State != "established" && c.Reason != "" && isRefusalReason(c.Reason) {
			return classify(c.Reason, c.Address, port)
		}
	}
	if dp != nil && !dp.Established {
		reason := dp.Reason
		if reason == "" {
			reason = "no UDP heartbeat answered yet"
		}
		return classify(udpReason(reason), firstNonEmpty(dp.Addr, addr), port)
	}
	for _, f := range r.Router.LinkFailures {
		if f.Peer == peer {
			return classify(udpReason(f.Reason)+fmt.Sprintf(" (%s ago)", ago(f.AgeSeconds)), addr, port)
		}
	}
	for _, c := range r.Router.Connections {
		if c.Peer == peer && c.Reason != "" {
			return classify(c.Reason, c.Address, port)
		}
	}
	if pingErr != "" && dp == nil {
		why, next = "no direct connection, and the ping got no answer ("+pingErr+")", "read 'weft status connections' and the log on both hosts"
		if addr != "" {
			next = fmt.Sprintf("connect it directly with 'weft connect %s'", addr)
		}
		return why, next
	}
	if addr == "" {
		return "no direct connection, and no address of the peer is known",
			"connect it directly with 'weft connect HOST' on one of the two hosts"
	}
	return "no direct connection: neither router has the other as a target (or found it)",
		fmt.Sprintf("connect it directly with 'weft connect %s'", addr)
}

// udpReason marks a data-path reason as such when it does not say so.
func udpReason(s string) string {
	if strings.Contains(strings.ToLower(s), "udp") {
		return s
	}
	return "data path: " + s
}

// isRefusalReason reports whether a connection's reason is a refusal in
// the handshake (not a network failure).
func isRefusalReason(s string) bool {
	s = strings.ToLower(s)
	for _, k := range []string{"password", "authentication", "version", "duplicate peer name", "incompatible", "malformed"} {
		if strings.Contains(s, k) {
			return true
		}
	}
	return false
}

// classify turns a reason from the mesh or the data path into why the
// path is not direct and the next step. addr is the peer's address as
// known (may be empty), port our mesh port (peers normally share it).
func classify(reason, addr string, port int) (why, next string) {
	l := strings.ToLower(reason)
	host, p := addr, strconv.Itoa(port)
	if h, pp, err := net.SplitHostPort(addr); err == nil {
		host, p = h, pp
	}
	if host == "" {
		host = "the peer's host"
	}
	switch {
	case strings.Contains(l, "password") || strings.Contains(l, "authentication"):
		return "refused by password: " + reason, "give both routers the same --password-file (or WEFT_PASSWORD)"
	case strings.Contains(l, "version"):
		return "refused by version: " + reason, "run the same weft version on both hosts ('weft version')"
	case strings.Contains(l, "duplicate peer name"):
		return "refused: " + reason, "give each router its own peer name: do not copy state dirs between hosts ('weft reset' on the copy)"
	case strings.Contains(l, "incompatible") || strings.Contains(l, "malformed"):
		return "refused: " + reason, "run the same weft version and options on both hosts"
	case strings.Contains(l, "udp") || strings.Contains(l, "heartbeat"):
		return fmt.Sprintf("no UDP answer: %s (a firewall or NAT drops UDP between us and %s)", reason, host),
			fmt.Sprintf("allow UDP port %s both ways between this host and %s", p, host)
	case strings.Contains(l, "connection refused"):
		return fmt.Sprintf("TCP refused: %s (no router listening on %s port %s?)", reason, host, p),
			fmt.Sprintf("start weft on %s, or check its --port", host)
	case strings.Contains(l, "timeout") || strings.Contains(l, "timed out") || strings.Contains(l, "no route") || strings.Contains(l, "unreachable"):
		return fmt.Sprintf("blocked TCP: %s (nothing answers on %s port %s)", reason, host, p),
			fmt.Sprintf("allow TCP port %s from this host to %s", p, host)
	}
	return reason, "read 'weft status connections' and the log on both hosts"
}

// peerAddress is an address the peer was seen at: ours to it, or one
// another peer reports.
func peerAddress(r *Report, peer string) string {
	for _, c := range r.Router.Connections {
		if c.Peer == peer && c.Outbound && c.Address != "" {
			return c.Address
		}
	}
	for _, dp := range r.Router.DataPaths {
		if dp.Peer == peer && dp.Addr != "" {
			return dp.Addr
		}
	}
	for _, p := range r.Router.Peers {
		for _, c := range p.Connections {
			if c.Name == peer && c.Outbound && c.Address != "" {
				return c.Address
			}
		}
	}
	return ""
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func refusalTotal(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// refusalText lists the non-zero refusal counts, sorted by kind.
func refusalText(m map[string]uint64) string {
	var parts []string
	for k, v := range m {
		if v > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", v, k))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func label(name, nick string) string {
	if nick == "" {
		return name
	}
	return name + "(" + nick + ")"
}

func pathText(path, via, viaNick string) string {
	if path == PathRelayed {
		return "relayed via " + label(via, viaNick)
	}
	return path
}

// ago renders an age in seconds for humans.
func ago(s float64) string {
	switch {
	case s < 90:
		return fmt.Sprintf("%.0f s", s)
	case s < 5400:
		return fmt.Sprintf("%.0f min", s/60)
	default:
		return fmt.Sprintf("%.1f h", s/3600)
	}
}

// FormatDoctor renders the verdict of `weft doctor` for humans: a line
// per peer, DNS, then the problems and warnings, and the verdict.
func FormatDoctor(d *DoctorReport) string {
	var b strings.Builder
	for _, p := range d.Peers {
		fmt.Fprintf(&b, "%s: ", label(p.Peer, p.NickName))
		if !p.Reachable {
			b.WriteString("unreachable")
		} else {
			b.WriteString("reachable, " + pathText(p.Path, p.Via, p.ViaNickName))
		}
		if p.RTTSeconds > 0 {
			fmt.Fprintf(&b, ", rtt %.2f ms", 1000*p.RTTSeconds)
		}
		if p.MTU > 0 {
			v := "verified"
			if !p.MTUVerified {
				v = "assumed"
			}
			fmt.Fprintf(&b, ", mtu %d (%s)", p.MTU, v)
		}
		if p.HandshakeAgeSeconds > 0 {
			fmt.Fprintf(&b, ", handshake %s ago", ago(p.HandshakeAgeSeconds))
		}
		if p.PingPath != "" {
			fmt.Fprintf(&b, ", clock %+.3f s", p.ClockOffsetSeconds)
		}
		if p.Encrypted {
			b.WriteString(", encrypted")
		}
		fmt.Fprintf(&b, ", %d DNS records\n", p.DNSRecords)
		if p.WhyNotDirect != "" {
			fmt.Fprintf(&b, "  why: %s\n  next: %s\n", p.WhyNotDirect, p.NextStep)
		}
	}
	switch {
	case !d.DNS.Enabled:
		b.WriteString("DNS: disabled\n")
	case d.DNS.ServerError != "":
		fmt.Fprintf(&b, "DNS: %s on %s does not answer: %s\n", d.DNS.Domain, d.DNS.Address, d.DNS.ServerError)
	default:
		fmt.Fprintf(&b, "DNS: %s on %s answers", d.DNS.Domain, d.DNS.Address)
		switch {
		case len(d.DNS.Upstream) == 0:
			b.WriteString("; no upstream resolver\n")
		case d.DNS.UpstreamError != "":
			fmt.Fprintf(&b, "; upstream %s does not answer\n", strings.Join(d.DNS.Upstream, ", "))
		default:
			fmt.Fprintf(&b, "; upstream %s answers in %.1f ms\n", strings.Join(d.DNS.Upstream, ", "), 1000*d.DNS.UpstreamSeconds)
		}
	}
	for _, n := range d.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	for _, w := range d.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	for _, p := range d.Problems {
		fmt.Fprintf(&b, "problem: %s\n", p)
	}
	if d.OK {
		b.WriteString("all is well\n")
	} else {
		fmt.Fprintf(&b, "%d problem(s) found\n", len(d.Problems))
	}
	return b.String()
}

// FormatPing renders one answered ping.
func FormatPing(p *PingReply) string {
	how := "over the direct path"
	if p.Path == PathRelayed {
		how = "relayed via " + label(p.AnsweredVia, p.AnsweredViaNickName)
	}
	return fmt.Sprintf("answer from %s %s: rtt %.3f ms\n", label(p.Peer, p.NickName), how, 1000*p.RTTSeconds)
}
