package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/weftnet/weft/control"
)

func TestParseDNSArgs(t *testing.T) {
	tests := []struct {
		pos  []string
		fqdn string
		want control.DNSRequest
		err  string
	}{
		{pos: []string{"netns:c1"}, want: control.DNSRequest{Target: "netns:c1"}},
		{pos: []string{"10.32.0.5", "netns:c1"}, fqdn: "db", want: control.DNSRequest{Target: "netns:c1", IPs: []string{"10.32.0.5"}, FQDN: "db"}},
		{pos: []string{"10.32.0.5", "10.32.0.6"}, fqdn: "db.weft.local.", want: control.DNSRequest{IPs: []string{"10.32.0.5", "10.32.0.6"}, FQDN: "db.weft.local."}},
		{pos: []string{"10.32.0.5"}, err: "give IP addresses and a name"},
		{pos: nil, fqdn: "db", err: "give IP addresses and a name"},
		{pos: []string{"10.32.0.300", "netns:c1"}, err: `invalid IP address "10.32.0.300"`},
		{pos: []string{"fd00::1", "netns:c1"}, err: `invalid IP address "fd00::1"`},
		{pos: []string{"netns:c1", "netns:c2"}, err: `invalid IP address "netns:c1"`},
	}
	for _, tc := range tests {
		got, err := parseDNSArgs("dns-add", tc.pos, tc.fqdn)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v -h %q: err %v, want %q", tc.pos, tc.fqdn, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v -h %q: %+v, %v; want %+v", tc.pos, tc.fqdn, got, err, tc.want)
		}
	}
}

func TestLookupQuestion(t *testing.T) {
	tests := []struct {
		name, qname string
		qtype       uint16
	}{
		{"c1", "c1.weft.local.", dns.TypeA},
		{"C1.", "C1.weft.local.", dns.TypeA},
		{"c1.weft.local", "c1.weft.local.", dns.TypeA},
		{"example.com.", "example.com.", dns.TypeA},
		{"10.32.0.5", "5.0.32.10.in-addr.arpa.", dns.TypePTR},
	}
	for _, tc := range tests {
		q, qt, err := lookupQuestion(tc.name, "weft.local.")
		if err != nil || q != tc.qname || qt != tc.qtype {
			t.Errorf("%s: %s %d %v; want %s %d", tc.name, q, qt, err, tc.qname, tc.qtype)
		}
	}
	if _, _, err := lookupQuestion("a..b", "weft.local."); err == nil {
		t.Error("a..b: no error")
	}
}

func TestDNSCommandsCheckArgumentsBeforeAskingTheRouter(t *testing.T) {
	dir := t.TempDir() // no router runs here: a bad argument must fail first
	for _, args := range [][]string{
		{"dns-add", "10.1.2.300", "netns:c1"},
		{"dns-add", "10.1.2.3"},
		{"dns-remove", "--fqdn", "db", "netns:c1"},
		{"dns-lookup"},
	} {
		var out, errb strings.Builder
		code := run(append([]string{"--state-dir", dir}, args...), &out, &errb)
		if code != 1 || strings.Contains(errb.String(), "no router") || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
}
