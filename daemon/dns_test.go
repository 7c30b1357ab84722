package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/router/routertest"
)

func TestDefaultDNSName(t *testing.T) {
	for target, want := range map[string]string{
		"netns:c1": "c1", "netns:web-2": "web-2", "pid:123": "", "": "", "c1": "",
	} {
		if got := DefaultDNSName(target); got != want {
			t.Errorf("DefaultDNSName(%q) = %q, want %q", target, got, want)
		}
	}
}

// withDNS turns DNS on, on a loopback port, with resolv.conf files under root.
func withDNS(root string) func(*Config) {
	return func(c *Config) {
		c.DNS, c.DNSListen, c.ResolvConfRoot = true, "127.0.0.1:0", root
		c.ResolvConf = filepath.Join(root, "no-resolv.conf")
	}
}

// lookup asks r's DNS server for name's A records.
func lookup(t *testing.T, r *testRouter, name string) ([]string, int) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	in, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, r.report(t).DNS.Address)
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	var out []string
	for _, rr := range in.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out, in.Rcode
}

func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantAddrs(t *testing.T, r *testRouter, name string, want ...string) func() error {
	return func() error {
		got, rcode := lookup(t, r, name)
		if len(want) == 0 && rcode != dns.RcodeNameError {
			return fmt.Errorf("%s: rcode %s %v, want NXDOMAIN", name, dns.RcodeToString[rcode], got)
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("%s: %v, want %v", name, got, want)
		}
		return nil
	}
}

func TestDNSNamesTravelAndSurviveRestart(t *testing.T) {
	nw := routertest.NewNetwork(4)
	root := t.TempDir()
	a := startRouterWith(t, nw, t.TempDir(), newFakeHost(), 10005, withDNS(root))
	peer := fmt.Sprintf("127.0.0.1:%d", a.report(t).Router.Port)
	dirB, hostB := t.TempDir(), newFakeHost()
	b := startRouterWith(t, nw, dirB, hostB, 10006, withDNS(root), peer)

	if _, err := b.client.Attach(control.AttachRequest{Target: "netns:c1", CIDRs: []string{"10.2.1.1/24"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.Attach(control.AttachRequest{Target: "netns:c2", CIDRs: []string{"10.2.1.2/24"}, WithoutDNS: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.DNSAdd(control.DNSRequest{IPs: []string{"10.2.1.7", "10.2.1.8"}, FQDN: "db"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "c1 on a", wantAddrs(t, a, "C1.weft.local.", "10.2.1.1"))
	eventually(t, "db on a", wantAddrs(t, a, "db.weft.local.", "10.2.1.7", "10.2.1.8"))
	eventually(t, "c2 has no name", wantAddrs(t, a, "c2.weft.local."))
	conf, err := os.ReadFile(filepath.Join(root, "etc/netns/c1/resolv.conf"))
	if err != nil || !strings.Contains(string(conf), "nameserver "+DNSAddr) {
		t.Errorf("resolv.conf of c1: %q, %v", conf, err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/netns/c2/resolv.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("resolv.conf written for a target attached --without-dns: %v", err)
	}

	// b restarts: its names come back on a, then removals still travel.
	b.stop()
	b = startRouterWith(t, nw, dirB, hostB, 10006, withDNS(root))
	eventually(t, "c1 on restarted b", wantAddrs(t, b, "c1.weft.local.", "10.2.1.1"))
	if _, err := b.client.DNSRemove(control.DNSRequest{IPs: []string{"10.2.1.8"}, FQDN: "db"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "db after remove", wantAddrs(t, a, "db.weft.local.", "10.2.1.7"))
	if _, err := b.client.Detach(control.AttachRequest{Target: "netns:c1"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "c1 after detach", wantAddrs(t, a, "c1.weft.local."))
	if _, err := os.Stat(filepath.Join(root, "etc/netns/c1/resolv.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("resolv.conf of c1 left after detach: %v", err)
	}
	if _, err := b.client.DNSRemove(control.DNSRequest{FQDN: "db"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "db after remove --fqdn", wantAddrs(t, a, "db.weft.local."))
}

func TestDNSBadRequests(t *testing.T) {
	nw := routertest.NewNetwork(5)
	root := t.TempDir()
	r := startRouterWith(t, nw, t.TempDir(), newFakeHost(), 10007, withDNS(root))
	off := startRouter(t, nw, t.TempDir(), newFakeHost(), 10008)
	if _, err := r.client.Attach(control.AttachRequest{Target: "netns:c1", CIDRs: []string{"10.2.1.1/24"}}); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		call func() error
		want string
	}{
		{"DNS disabled", func() error { _, err := off.client.DNSAdd(control.DNSRequest{Target: "netns:c1"}); return err }, "DNS is disabled"},
		{"bad IP", func() error {
			_, err := r.client.DNSAdd(control.DNSRequest{IPs: []string{"10.2.1.300"}, FQDN: "x"})
			return err
		}, "invalid IP address"},
		{"bad name", func() error {
			_, err := r.client.DNSAdd(control.DNSRequest{IPs: []string{"10.2.1.3"}, FQDN: "a..b"})
			return err
		}, "not a valid DNS name"},
		{"outside domain", func() error {
			_, err := r.client.DNSAdd(control.DNSRequest{IPs: []string{"10.2.1.3"}, FQDN: "x.example.com."})
			return err
		}, "outside the DNS domain"},
		{"unknown target", func() error { _, err := r.client.DNSAdd(control.DNSRequest{Target: "netns:c9"}); return err }, "not attached"},
		{"container without Docker", func() error { _, err := r.client.DNSAdd(control.DNSRequest{Target: "docker"}); return err }, "names a Docker container: this router runs without Docker"},
		{"bad attach name", func() error {
			_, err := r.client.Attach(control.AttachRequest{Target: "netns:c3", CIDRs: []string{"10.2.1.3/24"}, Name: "x_y..z"})
			return err
		}, "DNS name"},
		{"remove nothing named", func() error { _, err := r.client.DNSRemove(control.DNSRequest{IPs: []string{"10.2.1.1"}}); return err }, "give a TARGET"},
	}
	for _, tc := range bad {
		err := tc.call()
		var ue *control.UserError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want a user error containing %q", tc.name, err, tc.want)
		}
	}
	rep := r.report(t)
	if len(rep.Attachments) != 1 || len(rep.DNS.Entries) != 1 || rep.DNS.Entries[0].Name != "c1.weft.local." {
		t.Errorf("bad requests changed state: attachments %+v dns %+v", rep.Attachments, rep.DNS.Entries)
	}
	if _, err := off.client.StatusView("dns"); err == nil {
		t.Error("status dns on a router without DNS: no error")
	}
}

func TestDetachOfVanishedTargetForgetsItsNames(t *testing.T) {
	nw := routertest.NewNetwork(6)
	root, host := t.TempDir(), newFakeHost()
	r := startRouterWith(t, nw, t.TempDir(), host, 10009, withDNS(root))
	if _, err := r.client.Attach(control.AttachRequest{Target: "netns:c5", CIDRs: []string{"10.2.1.5/24"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "c5 registered", wantAddrs(t, r, "c5.weft.local.", "10.2.1.5"))
	host.vanish("netns:c5")
	removed, err := r.client.Detach(control.AttachRequest{Target: "netns:c5"})
	if err != nil || !slices.Equal(removed, []string{"10.2.1.5/24"}) {
		t.Fatalf("detach of a vanished target: %v, %v", removed, err)
	}
	eventually(t, "c5 forgotten", wantAddrs(t, r, "c5.weft.local."))
	if rep := r.report(t); len(rep.Attachments) != 0 {
		t.Errorf("attachments after detach: %+v", rep.Attachments)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/netns/c5/resolv.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("resolv.conf of c5 left: %v", err)
	}
	// A target never attached stays an error.
	host.vanish("netns:c6")
	if _, err := r.client.Detach(control.AttachRequest{Target: "netns:c6"}); err == nil {
		t.Error("detach of an unknown vanished target: no error")
	}
}
