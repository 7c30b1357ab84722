package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/router"
)

// Limits of `weft ping` and `weft doctor`.
const (
	// pingTimeout is how long a ping waits for its answer.
	pingTimeout = 3 * time.Second
	// doctorPingTimeout is how long each of doctor's pings waits.
	doctorPingTimeout = 2 * time.Second
	// doctorParallel bounds doctor's pings in flight (the router keeps at
	// most 64).
	doctorParallel = 16
	// dnsCheckTimeout bounds each DNS check.
	dnsCheckTimeout = 2 * time.Second
)

// resolveMeshPeer finds a known peer, other than ourselves, by name or
// nickname. An unknown or ambiguous peer is a user error.
func (d *Daemon) resolveMeshPeer(s string) (mesh.PeerName, string, error) {
	if s == "" {
		return 0, "", control.Userf("name a peer: its name (as in 'weft status peers') or nickname")
	}
	st := d.node.Status()
	var found []mesh.PeerStatus
	for _, p := range st.Peers {
		if p.Name.String() == s {
			found = []mesh.PeerStatus{p}
			break
		}
		if p.NickName == s {
			found = append(found, p)
		}
	}
	switch {
	case len(found) == 0:
		return 0, "", control.Userf("unknown peer %q: 'weft status peers' lists the known peers", s)
	case len(found) > 1:
		return 0, "", control.Userf("nickname %q is used by %d peers: name one by its peer name", s, len(found))
	case found[0].Name == d.self:
		return 0, "", control.Userf("%q is this router: name another peer", s)
	}
	return found[0].Name, found[0].NickName, nil
}

// Ping implements control.Backend: one ping over the overlay.
func (d *Daemon) Ping(peer string) (control.PingReply, error) {
	name, nick, err := d.resolveMeshPeer(peer)
	if err != nil {
		return control.PingReply{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	res, err := d.rt.Ping(ctx, name)
	if err != nil {
		return control.PingReply{}, pingError(name, nick, err)
	}
	return d.pingReply(res, nick), nil
}

// pingError is the user's view of a failed ping.
func pingError(name mesh.PeerName, nick string, err error) error {
	who := name.String() + "(" + nick + ")"
	switch {
	case errors.Is(err, router.ErrNoPeerRoute):
		return control.Userf("%s is unreachable: no route to it; 'weft doctor %s' says why", who, nick)
	case errors.Is(err, context.DeadlineExceeded):
		return control.Userf("no answer from %s within %v; 'weft doctor %s' says why", who, pingTimeout, nick)
	}
	return fmt.Errorf("ping %s: %w", who, err)
}

func (d *Daemon) pingReply(res router.PingResult, nick string) control.PingReply {
	r := control.PingReply{
		Peer: res.Peer.String(), NickName: nick, Path: control.PathRelayed,
		SentVia: res.SentVia.String(), AnsweredVia: res.AnsweredVia.String(),
		AnsweredViaNickName: d.node.PeerNickName(res.AnsweredVia),
		RTTSeconds:          res.RTT.Seconds(), ClockOffsetSeconds: res.ClockOffset.Seconds(),
	}
	if res.Direct() {
		r.Path = control.PathDirect
	}
	return r
}

// Doctor implements control.Backend: it pings every peer (or one),
// checks DNS, and hands the facts to control.Diagnose.
func (d *Daemon) Doctor(peer string) (control.DoctorReport, error) {
	var only mesh.PeerName
	if peer != "" {
		name, _, err := d.resolveMeshPeer(peer)
		if err != nil {
			return control.DoctorReport{}, err
		}
		only = name
	}
	in := control.DoctorInput{Pings: map[string]control.PingOutcome{}, DNS: d.dnsCheck()}
	if only != 0 {
		in.Peer = only.String()
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, doctorParallel)
	)
	for _, p := range d.node.Status().Peers {
		if p.Name == d.self || (only != 0 && p.Name != only) {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), doctorPingTimeout)
			defer cancel()
			var o control.PingOutcome
			if res, err := d.rt.Ping(ctx, p.Name); err != nil {
				o.Error = pingFailure(err)
			} else {
				r := d.pingReply(res, p.NickName)
				o.Reply = &r
			}
			mu.Lock()
			in.Pings[p.Name.String()] = o
			mu.Unlock()
		})
	}
	wg.Wait()
	rep := d.Report()
	in.Report = &rep
	return control.Diagnose(in), nil
}

// pingFailure is the short reason of a failed ping for doctor.
func pingFailure(err error) string {
	switch {
	case errors.Is(err, router.ErrNoPeerRoute):
		return "no route"
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %v", doctorPingTimeout)
	}
	return err.Error()
}

// dnsCheck asks our DNS server for the SOA of its domain and for some
// records of every peer, and the upstream resolvers for the root's NS
// records.
func (d *Daemon) dnsCheck() control.DNSCheck {
	if d.dns == nil {
		return control.DNSCheck{}
	}
	c := control.DNSCheck{Enabled: true, Domain: d.dns.domain, Address: d.dns.server.UDPAddr().String()}
	q := new(dns.Msg)
	q.SetQuestion(d.dns.domain, dns.TypeSOA)
	cl := &dns.Client{Net: "udp", Timeout: dnsCheckTimeout}
	if resp, _, err := cl.Exchange(q, c.Address); err != nil {
		c.ServerError = err.Error()
	} else if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) == 0 {
		c.ServerError = "answered " + dns.RcodeToString[resp.Rcode] + " without the domain's SOA record"
	} else {
		c.Unanswered = d.unansweredRecords(cl, c.Address)
	}
	ups, err := d.dns.forwarder.Servers()
	if err != nil {
		c.UpstreamError = err.Error()
		return c
	}
	for _, u := range ups {
		c.Upstream = append(c.Upstream, u.String())
	}
	if len(ups) == 0 {
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), dnsCheckTimeout)
	defer cancel()
	root := new(dns.Msg)
	root.SetQuestion(".", dns.TypeNS)
	start := time.Now()
	if _, err := d.dns.forwarder.Exchange(ctx, root, "udp"); err != nil {
		c.UpstreamError = strings.TrimPrefix(err.Error(), "forward: ")
	} else {
		c.UpstreamSeconds = time.Since(start).Seconds()
	}
	return c
}

// maxRecordChecks bounds the records of one peer, and of all, that doctor
// asks our DNS server for.
const (
	maxRecordChecksPerPeer = 3
	maxRecordChecks        = 64
)

// unansweredRecords asks our server at addr for the A records of a few
// names of each peer's records, and lists those whose answer lacks the
// record's address.
func (d *Daemon) unansweredRecords(cl *dns.Client, addr string) []control.DNSRecord {
	var out []control.DNSRecord
	perPeer := map[string]int{}
	asked := 0
	for _, e := range d.dns.store.Snapshot(false) {
		if !e.Address.Is4() || perPeer[e.Owner] >= maxRecordChecksPerPeer || asked >= maxRecordChecks {
			continue
		}
		perPeer[e.Owner]++
		asked++
		q := new(dns.Msg)
		q.SetQuestion(e.Name, dns.TypeA)
		found := false
		if resp, _, err := cl.Exchange(q, addr); err == nil {
			for _, rr := range resp.Answer {
				if a, ok := rr.(*dns.A); ok && a.A.Equal(e.Address.AsSlice()) {
					found = true
				}
			}
		}
		if !found {
			peer, _ := mesh.ParsePeerName(e.Owner)
			out = append(out, control.DNSRecord{Name: e.Name, Address: e.Address.String(), Peer: e.Owner, NickName: d.node.PeerNickName(peer)})
		}
	}
	return out
}
