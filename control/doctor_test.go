package control

import (
	"fmt"
	"strings"
	"testing"
)

const (
	peerB = "7a:00:00:00:00:02"
	peerC = "7a:00:00:00:00:03"
)

// healthy is the report of router a with direct, established, verified
// paths to b and c.
func healthy() *Report {
	r := &Report{DNS: &DNSReport{Domain: "weft.local.", Entries: []DNSRecord{{Name: "x.weft.local.", Peer: peerB}}}}
	r.Router.Name, r.Router.NickName, r.Router.Port = "7a:00:00:00:00:01", "a", 6783
	r.Router.Paths = []PeerPath{{Peer: peerB, NickName: "b", Path: PathDirect}, {Peer: peerC, NickName: "c", Path: PathDirect}}
	r.Router.DataPaths = []DataPath{
		{Peer: peerB, NickName: "b", Established: true, Addr: "10.0.0.2:6783", MTU: 1410, MTUVerified: true, HandshakeAgeSeconds: 60},
		{Peer: peerC, NickName: "c", Established: true, Addr: "10.0.0.3:6783", MTU: 1410, MTUVerified: true, HandshakeAgeSeconds: 60},
	}
	r.Router.Connections = []Connection{
		{Outbound: true, Address: "10.0.0.2:6783", State: "established", Peer: peerB, NickName: "b"},
		{Outbound: false, Address: "10.0.0.3:41000", State: "established", Peer: peerC, NickName: "c"},
	}
	return r
}

func direct(peer string) PingOutcome {
	return PingOutcome{Reply: &PingReply{Peer: peer, Path: PathDirect, SentVia: peer, AnsweredVia: peer, RTTSeconds: 0.0004}}
}

func relayed(peer, via string) PingOutcome {
	return PingOutcome{Reply: &PingReply{Peer: peer, Path: PathRelayed, SentVia: via, AnsweredVia: via, AnsweredViaNickName: "c", RTTSeconds: 0.0009}}
}

func TestDiagnose(t *testing.T) {
	dnsOK := DNSCheck{Enabled: true, Domain: "weft.local.", Address: "169.254.53.53:53"}
	for _, tc := range []struct {
		name string
		mod  func(r *Report, in *DoctorInput)
		ok   bool
		// want are substrings of the one problem line (none when ok).
		want []string
		// warn is a substring of a warning, if any is expected.
		warn string
	}{
		{"healthy", func(*Report, *DoctorInput) {}, true, nil, ""},
		{"UDP blocked, relayed via c", func(r *Report, in *DoctorInput) {
			r.Router.Paths[0] = PeerPath{Peer: peerB, NickName: "b", Path: PathRelayed, Via: peerC, ViaNickName: "c"}
			r.Router.DataPaths[0].Established = false
			r.Router.DataPaths[0].Reason = "waiting for the peer's first UDP heartbeat"
			r.Router.Connections[0].State = "pending"
			in.Pings[peerB] = relayed(peerB, peerC)
		}, false, []string{"b)", "relayed via " + peerC + "(c)", "no UDP answer", "allow UDP port 6783", "10.0.0.2"}, ""},
		{"UDP failed earlier, connection gone", func(r *Report, in *DoctorInput) {
			r.Router.Paths[0] = PeerPath{Peer: peerB, NickName: "b", Path: PathRelayed, Via: peerC, ViaNickName: "c"}
			r.Router.DataPaths = r.Router.DataPaths[1:]
			r.Router.Connections = r.Router.Connections[1:]
			r.Router.LinkFailures = []LinkFailure{{Peer: peerB, Reason: "timed out waiting for UDP heartbeat", AgeSeconds: 5}}
			r.Router.Peers = []Peer{{Name: peerC, Connections: []PeerLink{{Name: peerB, Address: "10.0.0.2:6783", Outbound: true}}}}
			in.Pings[peerB] = relayed(peerB, peerC)
		}, false, []string{"not direct", "no UDP answer", "timed out waiting for UDP heartbeat", "allow UDP port 6783 both ways between this host and 10.0.0.2"}, ""},
		{"TCP blocked", func(r *Report, in *DoctorInput) {
			r.Router.Paths[0] = PeerPath{Peer: peerB, NickName: "b", Path: PathRelayed, Via: peerC, ViaNickName: "c"}
			r.Router.DataPaths = r.Router.DataPaths[1:]
			r.Router.Connections[0] = Connection{Outbound: true, Address: "10.0.0.2:6783", State: "retrying", Peer: peerB, Reason: "dial tcp 10.0.0.2:6783: i/o timeout"}
			in.Pings[peerB] = relayed(peerB, peerC)
		}, false, []string{"blocked TCP", "allow TCP port 6783 from this host to 10.0.0.2"}, ""},
		{"TCP refused", func(r *Report, in *DoctorInput) {
			r.Router.Paths[0] = PeerPath{Peer: peerB, NickName: "b", Path: PathUnreachable}
			r.Router.DataPaths = r.Router.DataPaths[1:]
			r.Router.Connections[0] = Connection{Outbound: true, Address: "10.0.0.2:6783", State: "retrying", Peer: peerB, Reason: "dial tcp 10.0.0.2:6783: connect: connection refused"}
			in.Pings[peerB] = PingOutcome{Error: "no route"}
		}, false, []string{"unreachable", "TCP refused", "start weft on 10.0.0.2"}, ""},
		{"password mismatch", func(r *Report, in *DoctorInput) {
			r.Router.Paths[0] = PeerPath{Peer: peerB, NickName: "b", Path: PathUnreachable}
			r.Router.DataPaths = r.Router.DataPaths[1:]
			r.Router.Connections[0] = Connection{Outbound: true, Address: "10.0.0.2:6783", State: "retrying", Peer: peerB, Reason: "authentication failed: password mismatch"}
			in.Pings[peerB] = PingOutcome{Error: "no route"}
		}, false, []string{"refused by password", "same --password-file"}, ""},
		{"refused inbound, unknown peer", func(r *Report, in *DoctorInput) {
			r.Router.Connections = append(r.Router.Connections, Connection{Address: "10.0.0.9:50000", State: "failed", Reason: "protocol version mismatch"})
			r.Router.Refusals = map[string]uint64{"version": 2}
		}, false, []string{"connection from 10.0.0.9:50000 failed", "refused by version", "same weft version"}, "2 version"},
		{"refused outbound, peer unknown", func(r *Report, in *DoctorInput) {
			r.Router.Connections = append(r.Router.Connections, Connection{Outbound: true, Address: "10.0.0.8:6783", State: "retrying", Reason: "authentication failed: peer requires a password, we have none"})
		}, false, []string{"connection to 10.0.0.8:6783 failed", "refused by password", "same --password-file"}, ""},
		{"target silent, peer unknown", func(r *Report, in *DoctorInput) {
			r.Router.Connections = append(r.Router.Connections, Connection{Outbound: true, Address: "10.0.0.7:6783", State: "retrying", Reason: "dial tcp 10.0.0.7:6783: i/o timeout"})
		}, false, []string{"connection to 10.0.0.7:6783 failed", "blocked TCP", "allow TCP port 6783 from this host to 10.0.0.7"}, ""},
		{"connecting is not yet a problem", func(r *Report, in *DoctorInput) {
			r.Router.Connections = append(r.Router.Connections, Connection{Outbound: true, Address: "10.0.0.7:6783", State: "connecting"})
		}, true, nil, ""},
		{"ping lost although the routes say direct", func(r *Report, in *DoctorInput) {
			in.Pings[peerB] = PingOutcome{Error: "no answer within 2s"}
		}, false, []string{"unreachable", "no UDP answer", "the direct path is up but the ping got no answer (no answer within 2s)", "allow UDP port 6783 both ways between this host and 10.0.0.2"}, ""},
		{"answer came back relayed", func(r *Report, in *DoctorInput) {
			in.Pings[peerB] = relayed(peerB, peerC)
		}, false, []string{"relayed via " + peerC}, ""},
		{"no direct connection at all", func(r *Report, in *DoctorInput) {
			r.Router.Paths[0] = PeerPath{Peer: peerB, NickName: "b", Path: PathRelayed, Via: peerC}
			r.Router.DataPaths = r.Router.DataPaths[1:]
			r.Router.Connections = r.Router.Connections[1:]
			r.Router.Peers = []Peer{{Name: peerC, Connections: []PeerLink{{Name: peerB, Address: "10.0.0.2:6783", Outbound: true}}}}
			in.Pings[peerB] = relayed(peerB, peerC)
		}, false, []string{"no direct connection", "weft connect 10.0.0.2:6783"}, ""},
		{"our DNS server silent", func(r *Report, in *DoctorInput) {
			in.DNS.ServerError = "read udp: i/o timeout"
		}, false, []string{"DNS: our server on 169.254.53.53:53 does not answer"}, ""},
		{"a peer's record not answered", func(r *Report, in *DoctorInput) {
			in.DNS.Unanswered = []DNSRecord{{Name: "x.weft.local.", Address: "10.32.0.5", Peer: peerB, NickName: "b"}}
		}, false, []string{"does not answer x.weft.local. with 10.32.0.5, a record of " + peerB + "(b)"}, ""},
		{"upstream silent is a warning", func(r *Report, in *DoctorInput) {
			in.DNS.Upstream, in.DNS.UpstreamError = []string{"10.9.9.9:53"}, "i/o timeout"
		}, true, nil, "upstream 10.9.9.9:53 does not answer"},
		{"PMTU assumed is a warning", func(r *Report, in *DoctorInput) {
			r.Router.DataPaths[1].MTUVerified = false
		}, true, nil, "not verified"},
		{"clock skew is a warning", func(r *Report, in *DoctorInput) {
			o := direct(peerC)
			o.Reply.ClockOffsetSeconds = -3.5
			in.Pings[peerC] = o
		}, true, nil, "-3.5 s off"},
		{"name clash is a warning", func(r *Report, in *DoctorInput) {
			r.Router.NameClashes = 1
		}, true, nil, "our peer name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := healthy()
			in := DoctorInput{Report: r, DNS: dnsOK, Pings: map[string]PingOutcome{peerB: direct(peerB), peerC: direct(peerC)}}
			tc.mod(r, &in)
			d := Diagnose(in)
			text := FormatDoctor(&d)
			t.Log("\n" + text)
			if d.OK != tc.ok {
				t.Fatalf("OK %v, want %v:\n%s", d.OK, tc.ok, text)
			}
			if tc.ok && len(d.Problems) != 0 {
				t.Errorf("problems on a good mesh: %v", d.Problems)
			}
			if !tc.ok {
				if len(d.Problems) != 1 {
					t.Fatalf("%d problems, want 1:\n%s", len(d.Problems), text)
				}
				for _, w := range tc.want {
					if !strings.Contains(d.Problems[0], w) {
						t.Errorf("problem %q lacks %q", d.Problems[0], w)
					}
				}
				if !strings.Contains(d.Problems[0], "next: ") || strings.Contains(d.Problems[0], "\n") {
					t.Errorf("problem %q: want one line with a next step", d.Problems[0])
				}
				if !strings.Contains(text, "1 problem(s) found") {
					t.Errorf("text lacks the verdict:\n%s", text)
				}
			} else if !strings.Contains(text, "all is well") {
				t.Errorf("text lacks the verdict:\n%s", text)
			}
			if tc.warn != "" && !strings.Contains(strings.Join(d.Warnings, "\n"), tc.warn) {
				t.Errorf("warnings %q lack %q", d.Warnings, tc.warn)
			}
		})
	}
}

func TestDiagnoseOnePeer(t *testing.T) {
	r := healthy()
	r.Router.Paths[1].Path = PathUnreachable // c: not asked about
	d := Diagnose(DoctorInput{Report: r, Peer: peerB, Pings: map[string]PingOutcome{peerB: direct(peerB)}})
	if !d.OK || len(d.Peers) != 1 || d.Peers[0].Peer != peerB || !d.Peers[0].OK {
		t.Errorf("doctor b: %+v", d)
	}
	if d.Peers[0].DNSRecords != 1 || d.Peers[0].RTTSeconds != 0.0004 || d.Peers[0].MTU != 1410 {
		t.Errorf("facts of b: %+v", d.Peers[0])
	}
}

func TestWarnings(t *testing.T) {
	r := healthy()
	if w := Warnings(r); len(w) != 0 {
		t.Errorf("healthy: %q", w)
	}
	r.Router.Paths[0].Path = PathUnreachable
	r.Router.Paths[1] = PeerPath{Peer: peerC, NickName: "c", Path: PathRelayed, Via: peerB, ViaNickName: "b"}
	r.Router.Connections = append(r.Router.Connections, Connection{Address: "10.0.0.9:5000", State: "failed", Reason: "duplicate peer name 7a:00:00:00:00:01: ..."})
	r.Router.Connections = append(r.Router.Connections,
		Connection{Outbound: true, Address: "10.0.0.8:6783", State: "retrying", Reason: "authentication failed: password mismatch"},
		Connection{Outbound: true, Address: "10.0.0.7:6783", State: "retrying", Reason: "dial tcp 10.0.0.7:6783: i/o timeout"},
		Connection{Outbound: true, Address: "10.0.0.2:6783", State: "retrying", Peer: peerC, Reason: "connection reset"}, // c is reached
		Connection{Outbound: true, Address: "10.0.0.6:6783", State: "connecting"})
	r.Router.Refusals = map[string]uint64{"preauth_limit": 7, "duplicate_name": 1, "password": 0}
	r.Router.NameClashes = 2
	r.IPAM = &IPAMReport{Pools: []IPAMPool{{Pool: "10.32.0.0/12", Conflicts: []IPAMConflict{{Addr: "10.32.0.1"}}}}}
	w := strings.Join(Warnings(r), "\n")
	for _, want := range []string{
		"peer " + peerB + "(b) is unreachable",
		"peer " + peerC + "(c) is relayed via " + peerB + "(b)",
		"connection from 10.0.0.9:5000 refused: duplicate peer name",
		"connection to 10.0.0.8:6783 refused: authentication failed: password mismatch",
		"cannot connect to 10.0.0.7:6783: dial tcp 10.0.0.7:6783: i/o timeout",
		"connections refused since start: 1 duplicate_name, 7 preauth_limit",
		"2 other router(s) seen using our peer name",
		"1 address conflict(s) in pool 10.32.0.0/12",
	} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
	if got := len(Warnings(r)); got != 8 {
		t.Errorf("%d warnings, want 8:\n%s", got, w)
	}
	s := FormatStatus(r)
	if !strings.Contains(s, "warning: peer "+peerB+"(b) is unreachable") || !strings.Contains(s, "Reachable: 0 of 2 peers connected directly, 1 relayed, 1 unreachable") {
		t.Errorf("summary:\n%s", s)
	}
}

func TestFormatPing(t *testing.T) {
	if s := FormatPing(direct(peerB).Reply); s != "answer from "+peerB+" over the direct path: rtt 0.400 ms\n" {
		t.Errorf("direct: %q", s)
	}
	p := relayed(peerB, peerC).Reply
	p.NickName = "b"
	if s := FormatPing(p); s != "answer from "+peerB+"(b) relayed via "+peerC+"(c): rtt 0.900 ms\n" {
		t.Errorf("relayed: %q", s)
	}
}

// A flood of made-up peers gives a summary line, not one line per peer,
// and dropped gossip gives a warning.
func TestWarningsBounded(t *testing.T) {
	r := &Report{}
	for i := range 500 {
		r.Router.Paths = append(r.Router.Paths, PeerPath{Peer: fmt.Sprintf("02:00:00:00:%02x:%02x", i/256, i%256), Path: PathRelayed, Via: "x"})
	}
	r.Router.Forgeries = map[string]uint64{"topology_signature": 2}
	w := Warnings(r)
	if len(w) != maxPeerWarnings+2 {
		t.Fatalf("%d warnings:\n%s", len(w), strings.Join(w, "\n"))
	}
	if !strings.Contains(w[maxPeerWarnings], "and 490 more") || !strings.Contains(w[maxPeerWarnings+1], "gossip dropped since start: 2 topology_signature") {
		t.Fatalf("warnings:\n%s", strings.Join(w, "\n"))
	}
}
