package main

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/weftnet/weft/control"
)

// dnsLookupTimeout bounds `weft dns-lookup`, both transports included.
const dnsLookupTimeout = 5 * time.Second

// parseDNSArgs turns the positional arguments and -h of dns-add and
// dns-remove into a request: `[IP...] TARGET [-h FQDN]` or `IP... -h FQDN`.
// A last argument that is an IP address means there is no TARGET.
func parseDNSArgs(cmd string, pos []string, fqdn string) (control.DNSRequest, error) {
	req := control.DNSRequest{FQDN: fqdn}
	ips := pos
	if n := len(pos); n > 0 {
		if _, err := netip.ParseAddr(pos[n-1]); err != nil {
			req.Target, ips = pos[n-1], pos[:n-1]
		}
	}
	for _, s := range ips {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return req, fmt.Errorf("%s: invalid IP address %q: want an IPv4 address like 10.32.0.5 (the TARGET comes last)", cmd, s)
		}
		req.IPs = append(req.IPs, a.String())
	}
	if req.Target == "" && (len(req.IPs) == 0 || fqdn == "") {
		return req, fmt.Errorf("%s: give IP addresses and a name with -h NAME, or a TARGET (a Docker container, netns:NAME or pid:PID); run 'weft %s --help'", cmd, cmd)
	}
	return req, nil
}

func runDNSAdd(g *globals, args []string) error {
	fs := newFlagSet(g, "dns-add", "[IP...] TARGET [-h FQDN] | IP... -h FQDN")
	fqdn := fs.String("h", "", "the name to register (default: the target's name)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	req, err := parseDNSArgs("dns-add", pos, *fqdn)
	if err != nil {
		return err
	}
	recs, err := client(g).DNSAdd(req)
	if err != nil {
		return err
	}
	printRecords(g, recs)
	return nil
}

func runDNSRemove(g *globals, args []string) error {
	fs := newFlagSet(g, "dns-remove", "[IP...] TARGET [-h FQDN] | IP... -h FQDN | --fqdn FQDN")
	host := fs.String("h", "", "remove only this name")
	fqdn := fs.String("fqdn", "", "remove every record of this name (of this router)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	var req control.DNSRequest
	switch {
	case *fqdn != "" && (*host != "" || len(pos) > 0):
		return fmt.Errorf("dns-remove: --fqdn takes no other arguments; run 'weft dns-remove --help'")
	case *fqdn != "":
		req = control.DNSRequest{FQDN: *fqdn}
	default:
		if req, err = parseDNSArgs("dns-remove", pos, *host); err != nil {
			return err
		}
	}
	recs, err := client(g).DNSRemove(req)
	if err != nil {
		return err
	}
	printRecords(g, recs)
	return nil
}

func printRecords(g *globals, recs []control.DNSRecord) {
	for _, r := range recs {
		fmt.Fprintf(g.stdout, "%s %s\n", r.Name, r.Address)
	}
}

// lookupQuestion is the DNS question `weft dns-lookup NAME` asks: PTR for
// an IP address, A for a name; a single label gets the domain appended.
func lookupQuestion(name, domain string) (string, uint16, error) {
	if a, err := netip.ParseAddr(name); err == nil {
		rev, err := dns.ReverseAddr(a.String())
		return rev, dns.TypePTR, err
	}
	if _, ok := dns.IsDomainName(name); !ok || name == "" || name == "." {
		return "", 0, fmt.Errorf("dns-lookup: %q is not a valid DNS name", name)
	}
	if !strings.Contains(strings.TrimSuffix(name, "."), ".") {
		return strings.TrimSuffix(name, ".") + "." + dns.Fqdn(domain), dns.TypeA, nil
	}
	return dns.Fqdn(name), dns.TypeA, nil
}

func runDNSLookup(g *globals, args []string) error {
	fs := newFlagSet(g, "dns-lookup", "NAME")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("dns-lookup: name exactly one NAME (or an IP address for a reverse lookup)")
	}
	rep, err := client(g).Report()
	if err != nil {
		return err
	}
	if rep.DNS == nil {
		return fmt.Errorf("dns-lookup: DNS is disabled on this router (it was started with --no-dns)")
	}
	qname, qtype, err := lookupQuestion(pos[0], rep.DNS.Domain)
	if err != nil {
		return err
	}
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	c := &dns.Client{Timeout: dnsLookupTimeout}
	in, _, err := c.Exchange(m, rep.DNS.Address)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.Exchange(m, rep.DNS.Address)
	}
	if err != nil {
		return fmt.Errorf("dns-lookup: ask the DNS server on %s: %w", rep.DNS.Address, err)
	}
	switch in.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return fmt.Errorf("dns-lookup: %s: no such name (NXDOMAIN)", qname)
	default:
		return fmt.Errorf("dns-lookup: %s: the DNS server answered %s", qname, dns.RcodeToString[in.Rcode])
	}
	n := 0
	for _, rr := range in.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			fmt.Fprintln(g.stdout, rr.A.String())
			n++
		case *dns.PTR:
			fmt.Fprintln(g.stdout, rr.Ptr)
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("dns-lookup: %s has no %s record", qname, dns.TypeToString[qtype])
	}
	return nil
}
