package control

import (
	"strings"
	"testing"
)

func TestFormatDNS(t *testing.T) {
	r := &Report{DNS: &DNSReport{Domain: "weft.local.", Address: "169.254.53.53:53", Entries: []DNSRecord{
		{Name: "c1.weft.local.", Address: "10.2.1.1", Peer: "7a:00:00:00:00:01", NickName: "h1"},
		{Name: "db.weft.local.", Address: "10.2.1.9", Peer: "7a:00:00:00:00:02"},
	}}}
	got, err := FormatView(r, "dns")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "c1.weft.local. 10.2.1.1 7a:00:00:00:00:01(h1)" ||
		strings.Join(strings.Fields(lines[1]), " ") != "db.weft.local. 10.2.1.9 7a:00:00:00:00:02" {
		t.Errorf("status dns:\n%s", got)
	}
	if s := FormatStatus(r); !strings.Contains(s, "DNS: weft.local. on 169.254.53.53:53, 2 entries") {
		t.Errorf("summary:\n%s", s)
	}
	if _, err := FormatView(&Report{}, "dns"); err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("status dns without DNS: %v", err)
	}
	if s := FormatStatus(&Report{}); !strings.Contains(s, "DNS: disabled") {
		t.Errorf("summary without DNS:\n%s", s)
	}
}

func TestFormatStatusEncryption(t *testing.T) {
	if s := FormatStatus(&Report{}); !strings.Contains(s, "Encryption: off (no password") {
		t.Errorf("summary without a password:\n%s", s)
	}
	r := &Report{}
	r.Router.Encryption = true
	if s := FormatStatus(r); !strings.Contains(s, "Encryption: on\n") {
		t.Errorf("summary with a password:\n%s", s)
	}
}

func TestFormatStatusFastDP(t *testing.T) {
	if s := FormatStatus(&Report{}); !strings.Contains(s, "FastDP: off (all traffic in userspace)") {
		t.Errorf("without a fast path:\n%s", s)
	}
	r := &Report{}
	r.Router.FastDPPort = 6784
	r.Router.Connections = []Connection{{Path: "fastdp"}, {Path: "sleeve"}, {Path: "fastdp"}}
	if s := FormatStatus(r); !strings.Contains(s, "FastDP: on (UDP 6784; 2 connections on it)") {
		t.Errorf("with a fast path:\n%s", s)
	}
}
