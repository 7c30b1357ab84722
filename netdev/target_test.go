package netdev

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in      string
		want    Target
		wantErr string
	}{
		{in: "netns:c1", want: Target{Kind: TargetNetns, Name: "c1"}},
		{in: "pid:42", want: Target{Kind: TargetPID, PID: 42}},
		{in: "netns:", wantErr: "empty namespace name"},
		{in: "netns:a/b", wantErr: "invalid namespace name"},
		{in: "netns:..", wantErr: "invalid namespace name"},
		{in: "netns:c1\nnameserver 6.6.6.6", wantErr: "no spaces or control characters"},
		{in: "netns:two words", wantErr: "no spaces or control characters"},
		{in: "netns:tab\there", wantErr: "no spaces or control characters"},
		{in: "netns:cr\r", wantErr: "no spaces or control characters"},
		{in: "netns:nul\x00", wantErr: "no spaces or control characters"},
		{in: "netns:del\x7f", wantErr: "no spaces or control characters"},
		{in: "netns:bad\xffutf8", wantErr: "no spaces or control characters"},
		{in: "netns:nbsp\u00a0", wantErr: "no spaces or control characters"},
		{in: "netns:web_1.v2-a", want: Target{Kind: TargetNetns, Name: "web_1.v2-a"}},
		{in: "pid:", wantErr: "positive number"},
		{in: "pid:-3", wantErr: "positive number"},
		{in: "pid:x", wantErr: "positive number"},
		{in: "container:4f3a9c0d12e7", want: Target{Kind: TargetContainer, ID: "4f3a9c0d12e7"}},
		{in: "container:" + strings.Repeat("0123456789abcdef", 4), want: Target{Kind: TargetContainer, ID: strings.Repeat("0123456789abcdef", 4)}},
		{in: "container:4f3a9c0d12e", wantErr: "12 to 64 lowercase hex digits"},
		{in: "container:" + strings.Repeat("0123456789abcdef", 4) + "0", wantErr: "12 to 64 lowercase hex digits"},
		{in: "container:4F3A9C0D12E7", wantErr: "12 to 64 lowercase hex digits"},
		{in: "container:web-frontend", wantErr: "12 to 64 lowercase hex digits"},
		{in: "container:", wantErr: "12 to 64 lowercase hex digits"},
		{in: "c1", wantErr: "use netns:NAME"},
		{in: "web", wantErr: "name or ID of a Docker container"},
		{in: "docker:c1", wantErr: "use netns:NAME"},
		{in: "", wantErr: "use netns:NAME"},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrBadTarget) {
				t.Errorf("ParseTarget(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseTarget(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got.String(), tt.in)
		}
	}
}

func TestContainerTarget(t *testing.T) {
	id := strings.Repeat("ab", 32)
	stopped := Target{Kind: TargetContainer, ID: id}
	if _, err := stopped.open(); !errors.Is(err, ErrNotRunning) ||
		err.Error() != "container abababababab is not running; start it with 'docker start abababababab'" {
		t.Errorf("open of a stopped container = %v", err)
	}
	if TargetExists(stopped) {
		t.Error("TargetExists of a stopped container = true")
	}
	gone := Target{Kind: TargetContainer, ID: id, PID: 1 << 30}
	if _, err := gone.open(); !errors.Is(err, ErrNoSuchProcess) || !strings.Contains(err.Error(), "container abababababab") {
		t.Errorf("open of a container whose process is gone = %v", err)
	}
	running := Target{Kind: TargetContainer, ID: id, PID: os.Getpid()}
	h, err := running.open()
	if err != nil {
		t.Fatalf("open of a running container = %v", err)
	}
	h.Close()
	// The veth's name and alias do not depend on the PID.
	if HostIfName(running) != HostIfName(stopped) || running.String() != "container:"+id {
		t.Errorf("HostIfName or String depends on the PID: %s %s %s", HostIfName(running), HostIfName(stopped), running)
	}
}

func TestHostIfName(t *testing.T) {
	a := HostIfName(Target{Kind: TargetNetns, Name: "c1"})
	b := HostIfName(Target{Kind: TargetNetns, Name: "c2"})
	if len(a) > 15 || !strings.HasPrefix(a, "vwl") {
		t.Errorf("HostIfName = %q: want vwl prefix, at most 15 characters", a)
	}
	if a == b || a != HostIfName(Target{Kind: TargetNetns, Name: "c1"}) {
		t.Errorf("names not deterministic and distinct: %q %q", a, b)
	}
}

func TestCheckPrefixes(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		in []netip.Prefix
		ok bool
	}{
		{[]netip.Prefix{p("10.32.0.5/12"), p("fd00::1/64")}, true},
		{nil, true},
		{[]netip.Prefix{{}}, false},
		{[]netip.Prefix{p("0.0.0.0/0")}, false},
		{[]netip.Prefix{p("224.0.0.1/4")}, false},
		{[]netip.Prefix{p("127.0.0.2/8")}, false},
		{[]netip.Prefix{p("::ffff:10.0.0.1/120")}, false},
		{[]netip.Prefix{p("10.0.0.1/24"), p("10.0.0.1/16")}, false},
	}
	for _, tt := range tests {
		err := checkPrefixes(tt.in)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrBadAddress)) {
			t.Errorf("checkPrefixes(%v) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func TestGratuitousARP(t *testing.T) {
	f := gratuitousARP([]byte{2, 0, 0, 0, 0, 1}, netip.MustParseAddr("10.1.2.3"))
	if len(f) != 42 || f[12] != 0x08 || f[13] != 0x06 || f[21] != 1 {
		t.Fatalf("bad frame %x", f)
	}
	if string(f[28:32]) != string(f[38:42]) || f[28] != 10 || f[31] != 3 {
		t.Errorf("sender and target address differ: %x", f)
	}
}

// FuzzParseTarget checks that ParseTarget never panics and that what it
// accepts prints back to the same string.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"netns:c1", "pid:1", "netns:", "pid:-1", "docker:x", "", "container:4f3a9c0d12e7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tgt, err := ParseTarget(s)
		if err != nil {
			return
		}
		back, err := ParseTarget(tgt.String())
		if err != nil || back != tgt {
			t.Fatalf("ParseTarget(%q) = %v, but %q parses to %v, %v", s, tgt, tgt.String(), back, err)
		}
		if len(HostIfName(tgt)) > 15 {
			t.Fatalf("host interface name too long for %q", s)
		}
	})
}
