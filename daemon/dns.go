package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/nameserver"
	"github.com/weftnet/weft/state"
)

// DNSAddr is the address of every host's DNS server: link-local, the same
// on every host, added (as /32) to the bridge of each host. Attached targets
// get a link-scope route to it through their weft interface, so each reaches
// the server of its own host; the data plane must not carry ARP for it
// between hosts.
const DNSAddr = "169.254.53.53"

// dnsIP is DNSAddr parsed.
var dnsIP = netip.MustParseAddr(DNSAddr)

// DNSPrefix is DNSAddr as the /32 added to the bridge and routed to in
// every attached target.
var DNSPrefix = netip.PrefixFrom(dnsIP, 32)

// dnsGCInterval is how often expired tombstones are forgotten.
const dnsGCInterval = time.Minute

// dnsService is the embedded DNS of a running router: the record store, its
// gossip adapter, the handler and the server.
type dnsService struct {
	domain  string
	store   *nameserver.Store
	gossip  *dnsGossiper
	handler *nameserver.Handler
	// forwarder reads the upstream resolvers.
	forwarder *nameserver.Forwarder
	server    *nameserver.Server
	resolv    nameserver.ResolvConfWriter
	listen    string // "169.254.53.53:53", or what tests chose
}

// startDNS creates the store (with our persisted records), registers the
// gossip channel on the node, adds the DNS address to the bridge and starts
// the server. It must run before the node starts. Goroutines it starts end
// when ctx ends; wg waits for them.
func (d *Daemon) startDNS(ctx context.Context, wg *sync.WaitGroup) error {
	domain, err := nameserver.NormalizeDomain(orDefault(d.cfg.DNSDomain, nameserver.DefaultDomain))
	if err != nil {
		return fmt.Errorf("--dns-domain %q: %w", d.cfg.DNSDomain, err)
	}
	node := d.node
	store, err := nameserver.NewStore(nameserver.StoreConfig{
		Self: d.self,
		// The mesh gives every known peer a nickname (its name by default).
		KnownPeer: func(p mesh.PeerName) bool { return p == d.self || node.PeerNickName(p) != "" },
		// Records are signed by their owner's identity key and checked
		// against the key the mesh holds for the owner.
		Sign: func(msg []byte) []byte { return d.identity.Sign(nameserver.SignatureContext, msg) },
		Verify: func(owner mesh.PeerName, msg, sig []byte) bool {
			key := node.PeerKey(owner)
			return key != nil && mesh.VerifySignature(key, nameserver.SignatureContext, msg, sig)
		},
		Logger: d.log.With("part", "dns"),
	})
	if err != nil {
		return err
	}
	s := &dnsService{
		domain: domain,
		store:  store,
		gossip: &dnsGossiper{store: store},
		resolv: nameserver.ResolvConfWriter{Root: d.cfg.ResolvConfRoot},
		listen: d.cfg.DNSListen,
	}
	if s.listen == "" {
		s.listen = net.JoinHostPort(DNSAddr, "53")
	}
	recs, err := d.store.DNSRecords()
	if err != nil {
		d.log.Warn("read persisted DNS records", "err", err)
	}
	for _, r := range recs {
		addr, err := netip.ParseAddr(r.Addr)
		if err == nil {
			// A record of another --dns-domain than this run's is dropped.
			_, err = nameserver.QualifyName(r.Name, domain)
		}
		if err == nil {
			_, err = store.Add(r.Name, addr, r.Target)
		}
		if err != nil {
			d.log.Warn("persisted DNS record dropped", "name", r.Name, "addr", r.Addr, "err", err)
		}
	}
	s.gossip.ch = node.RegisterGossip(dnsChannel, s.gossip)
	node.OnPeerGone(func(p mesh.PeerName) { store.PeerGone(p) })

	listenAP, err := netip.ParseAddrPort(s.listen)
	if err != nil {
		return fmt.Errorf("DNS listen address %q: %w", s.listen, err)
	}
	s.forwarder = nameserver.NewForwarder(nameserver.ForwarderConfig{
		ResolvConf: d.cfg.ResolvConf,
		Self:       []netip.AddrPort{listenAP},
		Logger:     d.log.With("part", "dns-forward"),
	})
	s.handler, err = nameserver.NewHandler(nameserver.HandlerConfig{
		Store:       store,
		Domain:      domain,
		Upstream:    s.forwarder,
		ForwardFrom: []netip.Prefix{DNSPrefix},
		Logger:      d.log.With("part", "dns"),
	})
	if err != nil {
		return err
	}
	if listenAP.Addr() == dnsIP {
		if err := d.deps.Host.Expose(d.cfg.Bridge, []netip.Prefix{DNSPrefix}); err != nil {
			return fmt.Errorf("add DNS address %s to bridge %s: %w (run with --no-dns to go without DNS)", DNSAddr, d.cfg.Bridge, err)
		}
		if err := d.deps.Host.RouteRepliesFrom(d.cfg.Bridge, dnsIP); err != nil {
			return fmt.Errorf("DNS server: %w (run with --no-dns to go without DNS)", err)
		}
	}
	s.server = nameserver.NewServer(s.handler, d.log.With("part", "dns-server"))
	if err := s.server.Listen(s.listen, s.listen); err != nil {
		return fmt.Errorf("DNS server on %s: %w (is another DNS server using it? run with --no-dns to go without)", s.listen, err)
	}
	if err := s.server.Start(ctx); err != nil {
		s.server.Stop()
		return fmt.Errorf("DNS server on %s: %w", s.listen, err)
	}
	d.dns = s
	d.refreshForwardFrom()
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(dnsGCInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				store.GC()
			}
		}
	}()
	d.log.Info("DNS server started", "domain", domain, "addr", s.server.UDPAddr().String(), "records", len(recs))
	return nil
}

// stopDNS stops the server; records stay persisted.
func (d *Daemon) stopDNS() {
	if d.dns != nil {
		d.dns.server.Stop()
	}
}

// DefaultDNSName is the DNS name a target gets when attached without
// --name: the namespace name of a netns: target, none for a pid: target
// (a process id says nothing about what runs there).
func DefaultDNSName(target string) string {
	if name, ok := strings.CutPrefix(target, "netns:"); ok {
		return name
	}
	return ""
}

// refreshForwardFrom lets the clients of the weft side recurse through the
// DNS server: the ranges of attached targets and of the bridge's own
// addresses, the --ipalloc-range and the DNS address itself (the host
// asking its own server). Loopback is always allowed by the handler.
// Called with d.mu held, or before the control API serves.
func (d *Daemon) refreshForwardFrom() {
	if d.dns == nil {
		return
	}
	ps := []netip.Prefix{DNSPrefix}
	if d.cfg.IPAllocRange.IsValid() {
		ps = append(ps, d.cfg.IPAllocRange.Masked())
	}
	add := func(ss []string) {
		for _, s := range ss {
			if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is4() {
				ps = append(ps, p.Masked())
			}
		}
	}
	if atts, err := d.store.Attachments(); err == nil {
		for _, a := range atts {
			add(a.Addrs)
		}
	}
	if ex, err := d.deps.Host.Exposed(d.cfg.Bridge); err == nil {
		add(prefixStrings(ex))
	}
	if d.plugin != nil {
		ps = append(ps, d.plugin.Subnets()...)
	}
	d.dns.handler.SetForwardFrom(ps)
}

// registerTarget makes an attached target use weft's DNS: the route to
// the DNS address in its namespace and, for netns: targets, its
// resolv.conf. Failures are logged: the attachment itself stands.
func (d *Daemon) registerTarget(target string) {
	if d.dns == nil {
		return
	}
	if err := d.deps.Host.AddRoute(target, DNSPrefix); err != nil {
		d.log.Warn("no route to the DNS server in target", "target", target, "err", err)
	}
	if !strings.HasPrefix(target, "netns:") {
		return
	}
	if err := d.dns.resolv.Write(target, dnsIP, d.dns.domain); err != nil {
		d.log.Warn("could not write resolv.conf of target", "target", target, "err", err)
	}
}

// unregisterTarget removes the resolv.conf of a fully detached target.
func (d *Daemon) unregisterTarget(target string) {
	if d.dns == nil || !strings.HasPrefix(target, "netns:") {
		return
	}
	if err := d.dns.resolv.Remove(target); err != nil && !errors.Is(err, nameserver.ErrForeignFile) {
		d.log.Warn("could not remove resolv.conf of target", "target", target, "err", err)
	}
}

// addRecords registers fqdn for each address on behalf of target,
// broadcasts the change and persists our records. Called with d.mu held.
func (d *Daemon) addRecords(fqdn string, addrs []netip.Addr, target string) ([]nameserver.Record, error) {
	var changed *nameserver.RecordSet
	var out []nameserver.Record
	for _, a := range addrs {
		set, err := d.dns.store.Add(fqdn, a, target)
		if err != nil {
			d.afterDNSChange(changed)
			return out, err
		}
		changed = changed.Merge(set)
		out = append(out, nameserver.Record{Name: fqdn, Addr: a, Target: target})
	}
	return out, d.afterDNSChange(changed)
}

// removeRecords tombstones our records matching any of filters, broadcasts
// and persists. Called with d.mu held.
func (d *Daemon) removeRecords(filters ...nameserver.Filter) ([]nameserver.Record, error) {
	var changed *nameserver.RecordSet
	for _, f := range filters {
		changed = changed.Merge(d.dns.store.Remove(f))
	}
	return changed.Records(), d.afterDNSChange(changed)
}

// afterDNSChange broadcasts a local change and persists our own records.
func (d *Daemon) afterDNSChange(changed *nameserver.RecordSet) error {
	if changed.Len() == 0 {
		return nil
	}
	d.dns.gossip.broadcast(changed)
	own := d.dns.store.Own()
	recs := make([]state.DNSRecord, 0, len(own))
	for _, r := range own {
		recs = append(recs, state.DNSRecord{Name: r.Name, Addr: r.Addr.String(), Target: r.Target})
	}
	return d.store.SetDNSRecords(recs)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// dnsReport is the DNS part of `weft report`; nil when DNS is off.
func (d *Daemon) dnsReport() *control.DNSReport {
	if d.dns == nil {
		return nil
	}
	r := &control.DNSReport{
		Domain:   d.dns.domain,
		Address:  d.dns.server.UDPAddr().String(),
		Entries:  []control.DNSRecord{},
		Upstream: []string{},
	}
	for _, e := range d.dns.store.Snapshot(false) {
		peer, _ := mesh.ParsePeerName(e.Owner)
		r.Entries = append(r.Entries, control.DNSRecord{
			Name: e.Name, Address: e.Address.String(), Peer: e.Owner,
			NickName: d.node.PeerNickName(peer), Target: e.Target,
		})
	}
	if ups, err := d.dns.forwarder.Servers(); err == nil {
		for _, u := range ups {
			r.Upstream = append(r.Upstream, u.String())
		}
	}
	st := d.dns.server.Stats()
	r.Stats = map[string]uint64{
		"queries": st.Queries, "local": st.Local, "nxdomain": st.NXDomain,
		"forwarded": st.Forwarded, "forward_failed": st.ForwardFailed,
		"refused": st.Refused, "malformed": st.Malformed, "truncated": st.Truncated,
	}
	r.Answers = []control.DNSAnswers{}
	for _, a := range st.Answers {
		r.Answers = append(r.Answers, control.DNSAnswers{Type: a.Type, Rcode: a.Rcode, N: a.N})
	}
	r.UpstreamLatency = dnsHistogram(st.Upstream)
	return r
}
