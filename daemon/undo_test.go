package daemon

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/router/routertest"
)

func TestFailedAttachLeavesNothing(t *testing.T) {
	nw := routertest.NewNetwork(32)
	root := t.TempDir()
	host := newFakeHost()
	r := startRouterWith(t, nw, t.TempDir(), host, 10032, withDNS(root))
	ctr := ContainerPrefix + strings.Repeat("ab", 32)
	attached := func() []string {
		host.mu.Lock()
		defer host.mu.Unlock()
		var out []string
		for _, p := range host.atts[ctr] {
			out = append(out, p.String())
		}
		return out
	}
	records := func() []string {
		var out []string
		for _, a := range r.report(t).Attachments {
			if a.Target == ctr {
				out = a.Addrs
			}
		}
		return out
	}

	// The last step (the proxy's MarkReady) fails on a new attachment:
	// no interface, no record, no DNS name, and the address is free.
	host.mu.Lock()
	host.readyErr = errors.New("injected failure")
	host.mu.Unlock()
	if _, err := r.client.Attach(control.AttachRequest{Target: ctr, CIDRs: []string{"10.2.1.5/24"}, Name: "web"}); err == nil {
		t.Fatal("attach succeeded despite the failure")
	}
	if got := attached(); len(got) != 0 {
		t.Errorf("failed attach left the interface with %v", got)
	}
	if got := records(); got != nil {
		t.Errorf("failed attach left the record %v", got)
	}
	if ips, _ := lookup(t, r, "web.weft.local."); len(ips) != 0 {
		t.Errorf("failed attach left DNS records %v", ips)
	}
	if _, err := r.client.Attach(control.AttachRequest{Target: "netns:other", CIDRs: []string{"10.2.1.5/24"}, WithoutDNS: true}); err != nil {
		t.Errorf("address of the failed attach still taken: %v", err)
	}

	// On an attached target, a failed attach of one more address takes
	// back only that address.
	host.mu.Lock()
	host.readyErr = nil
	host.mu.Unlock()
	if _, err := r.client.Attach(control.AttachRequest{Target: ctr, CIDRs: []string{"10.2.1.6/24"}, Name: "web"}); err != nil {
		t.Fatal(err)
	}
	host.mu.Lock()
	host.readyErr = errors.New("injected failure")
	host.mu.Unlock()
	if _, err := r.client.Attach(control.AttachRequest{Target: ctr, CIDRs: []string{"10.2.1.7/24"}, Name: "web"}); err == nil {
		t.Fatal("second attach succeeded despite the failure")
	}
	want := []string{"10.2.1.6/24"}
	if got := attached(); !slices.Equal(got, want) {
		t.Errorf("after a failed second attach the interface has %v, want %v", got, want)
	}
	if got := records(); !slices.Equal(got, want) {
		t.Errorf("after a failed second attach the record has %v, want %v", got, want)
	}
	if ips, _ := lookup(t, r, "web.weft.local."); !slices.Equal(ips, []string{"10.2.1.6"}) {
		t.Errorf("after a failed second attach web resolves to %v", ips)
	}
}
