package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/router/routertest"
)

// TestAttachNamesValidated: --name must be a DNS name of RFC 1123 labels
// ('_' allowed), with DNS or without; a refused attach changes nothing
// (issue 16: `--name 'two words'` made ps and status dns print one record
// across two lines).
func TestAttachNamesValidated(t *testing.T) {
	root := t.TempDir()
	nw := routertest.NewNetwork(1)
	r := startRouterWith(t, nw, t.TempDir(), newFakeHost(), 10093, withDNS(root))
	for _, c := range []struct {
		name       string
		withoutDNS bool
	}{
		{"two words", false},
		{"two words", true},
		{"c1\nevil 10.9.9.9", false},
		{"bang!", false},
		{"-x", true},
	} {
		_, err := r.client.Attach(control.AttachRequest{Target: "netns:c1", CIDRs: []string{"10.2.1.1/24"}, Name: c.name, WithoutDNS: c.withoutDNS})
		var ue *control.UserError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--name") {
			t.Errorf("attach --name %q (without DNS %v): %v, want a user error about --name", c.name, c.withoutDNS, err)
		}
	}
	rep := r.report(t)
	if len(rep.Attachments) != 0 || len(rep.DNS.Entries) != 0 {
		t.Fatalf("refused attaches left attachments %+v, records %+v", rep.Attachments, rep.DNS.Entries)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/netns/c1")); err == nil {
		t.Errorf("a refused attach wrote a resolv.conf")
	}
	for i, name := range []string{"web_1", "web-2.weft.local", "db"} {
		target := "netns:ok" + string(rune('a'+i))
		if _, err := r.client.Attach(control.AttachRequest{Target: target, CIDRs: []string{"10.2.1." + string(rune('5'+i)) + "/24"}, Name: name}); err != nil {
			t.Errorf("attach --name %q: %v", name, err)
		}
	}
	if rep := r.report(t); len(rep.DNS.Entries) != 3 {
		t.Errorf("records %+v, want 3", rep.DNS.Entries)
	}
}
