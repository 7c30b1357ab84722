package daemon

import (
	"errors"
	"net/netip"
	"slices"
	"strings"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/nameserver"
	"github.com/weftnet/weft/state"
)

// errDNSDisabled answers DNS requests to a router started with --no-dns.
var errDNSDisabled = control.Userf("DNS is disabled on this router (it was started with --no-dns)")

// DNSAdd implements control.Backend: `weft dns-add`.
func (d *Daemon) DNSAdd(req control.DNSRequest) ([]control.DNSRecord, error) {
	if d.dns == nil {
		return nil, errDNSDisabled
	}
	ips, err := parseIPs("dns-add", req.IPs)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	target, name := "", req.FQDN
	if req.Target != "" {
		if target, err = d.parseTarget(req.Target); err != nil {
			return nil, control.Userf("dns-add: %v", err)
		}
		attName, attIPs, attached := d.attachedTarget(target)
		if len(ips) == 0 {
			if !attached {
				return nil, control.Userf("dns-add: %s is not attached to the weft network; give its IP addresses", target)
			}
			ips = attIPs
		}
		if name == "" {
			name = orDefault(attName, d.defaultDNSName(target))
		}
		if name == "" {
			return nil, control.Userf("dns-add: %s has no name of its own; give one with -h NAME", target)
		}
	}
	if name == "" || len(ips) == 0 {
		return nil, control.Userf("dns-add: give IP addresses and a name with -h NAME, or a TARGET")
	}
	fqdn, err := d.qualify("dns-add", name)
	if err != nil {
		return nil, err
	}
	recs, err := d.addRecords(fqdn, ips, target)
	return d.dnsRecords(recs), err
}

// DNSRemove implements control.Backend: `weft dns-remove`.
func (d *Daemon) DNSRemove(req control.DNSRequest) ([]control.DNSRecord, error) {
	if d.dns == nil {
		return nil, errDNSDisabled
	}
	ips, err := parseIPs("dns-remove", req.IPs)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var f nameserver.Filter
	if req.Target != "" {
		if f.Target, err = d.parseTarget(req.Target); err != nil {
			return nil, control.Userf("dns-remove: %v", err)
		}
	}
	if req.FQDN != "" {
		if f.Name, err = d.qualify("dns-remove", req.FQDN); err != nil {
			return nil, err
		}
	}
	if f.Target == "" && f.Name == "" {
		return nil, control.Userf("dns-remove: give a TARGET, a name with -h NAME, or --fqdn NAME")
	}
	var filters []nameserver.Filter
	for _, ip := range ips {
		g := f
		g.Addr = ip
		filters = append(filters, g)
	}
	if len(ips) == 0 {
		filters = append(filters, f)
	}
	recs, err := d.removeRecords(filters...)
	return d.dnsRecords(recs), err
}

// registerAttached registers the DNS name of a newly attached target for
// the addresses given and points the target at our DNS server. fqdn is ""
// when no name is registered. Called with d.mu held.
func (d *Daemon) registerAttached(target, fqdn string, addrs []netip.Prefix) error {
	d.registerTarget(target)
	d.refreshForwardFrom()
	if fqdn == "" {
		return nil
	}
	ips := make([]netip.Addr, 0, len(addrs))
	for _, p := range addrs {
		ips = append(ips, p.Addr())
	}
	_, err := d.addRecords(fqdn, ips, target)
	return err
}

// attachName checks, before anything is attached, the DNS name an attach
// request registers and returns it fully qualified ("" for none).
func (d *Daemon) attachName(req control.AttachRequest, target string) (string, error) {
	if d.dns == nil || req.WithoutDNS {
		return "", nil
	}
	name := orDefault(req.Name, d.defaultDNSName(target))
	if name == "" {
		return "", nil
	}
	fqdn, err := nameserver.QualifyName(name, d.dns.domain)
	if err != nil && req.Name == "" {
		// A name the user did not give (a container's, say "web.v2")
		// goes under the domain; one that still is no DNS name (a label
		// over 63 bytes) is left out of DNS rather than failing the
		// attach the user asked for.
		if fqdn, err = nameserver.QualifyName(strings.TrimSuffix(name, ".")+"."+d.dns.domain, d.dns.domain); err != nil {
			d.log.Warn("attached without a DNS name: the target's name is no DNS name", "target", target, "name", name, "err", err)
			return "", nil
		}
	}
	if err != nil {
		hint := "give another with --name, or attach --without-dns"
		return "", control.Userf("attach %s: DNS name %q: %v; %s", target, name, err, hint)
	}
	return fqdn, nil
}

// unregisterDetached removes the records of the addresses removed from
// target, and everything of the target when it is fully detached.
// Called with d.mu held.
func (d *Daemon) unregisterDetached(target string, removed []netip.Prefix, gone bool) error {
	defer d.refreshForwardFrom()
	if d.dns == nil {
		return nil
	}
	var filters []nameserver.Filter
	if gone {
		filters = append(filters, nameserver.Filter{Target: target})
		d.unregisterTarget(target)
	} else {
		for _, p := range removed {
			filters = append(filters, nameserver.Filter{Target: target, Addr: p.Addr()})
		}
	}
	_, err := d.removeRecords(filters...)
	return err
}

// attachedTarget returns the name given at attach and the addresses of a
// persisted attachment.
func (d *Daemon) attachedTarget(target string) (name string, ips []netip.Addr, ok bool) {
	atts, err := d.store.Attachments()
	if err != nil {
		return "", nil, false
	}
	i := slices.IndexFunc(atts, func(a state.Attachment) bool { return a.Target == target })
	if i < 0 {
		return "", nil, false
	}
	for _, s := range atts[i].Addrs {
		if p, err := netip.ParsePrefix(s); err == nil {
			ips = append(ips, p.Addr())
		}
	}
	return atts[i].Name, ips, true
}

// qualify turns a user's name into a fully qualified one in our domain.
func (d *Daemon) qualify(cmd, name string) (string, error) {
	fqdn, err := nameserver.QualifyName(name, d.dns.domain)
	if err != nil {
		if errors.Is(err, nameserver.ErrOutsideDomain) {
			return "", control.Userf("%s: %q is outside the DNS domain %s", cmd, name, d.dns.domain)
		}
		return "", control.Userf("%s: %q is not a valid DNS name", cmd, name)
	}
	return fqdn, nil
}

// parseIPs parses IPv4 addresses given on the command line.
func parseIPs(cmd string, ss []string) ([]netip.Addr, error) {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return nil, control.Userf("%s: invalid IP address %q: want an IPv4 address like 10.32.0.5", cmd, s)
		}
		out = append(out, a)
	}
	return out, nil
}

// dnsRecords converts records for the control API.
func (d *Daemon) dnsRecords(recs []nameserver.Record) []control.DNSRecord {
	out := make([]control.DNSRecord, 0, len(recs))
	for _, r := range recs {
		out = append(out, control.DNSRecord{Name: r.Name, Address: r.Addr.String(), Peer: d.self.String()})
	}
	return out
}
