package main

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestRouterProcs(t *testing.T) {
	for cpus, want := range map[int]int{1: 1, 2: 1, 3: 1, 4: 2, 16: 8} {
		if got := routerProcs(cpus); got != want {
			t.Errorf("routerProcs(%d) = %d, want %d", cpus, got, want)
		}
	}
}

func TestQueueCount(t *testing.T) {
	t.Setenv("WEFT_QUEUES", "3")
	if got := queueCount(); got != 3 {
		t.Errorf("WEFT_QUEUES=3: %d queues", got)
	}
	t.Setenv("WEFT_QUEUES", "0")
	if got := queueCount(); got < 1 || got > 4 {
		t.Errorf("WEFT_QUEUES=0: %d queues, want the default of 1 to 4", got)
	}
}

type closer struct{ err error }

func (c closer) Close() error { return c.err }

func TestGroupHelpers(t *testing.T) {
	cs := []closer{{nil}, {errors.New("second")}, {nil}}
	if got := asInterfaces[io.Closer](cs); len(got) != 3 || got[1].Close() == nil {
		t.Fatalf("asInterfaces = %v", got)
	}
	if err := closeAll(cs); err == nil || err.Error() != "second" {
		t.Fatalf("closeAll = %v, want the second one's error", err)
	}
}

func TestNoPasswordWarning(t *testing.T) {
	for _, c := range []struct {
		host     string
		password string
		warn     bool
	}{
		{"", "", true},
		{"192.168.1.5", "", true},
		{"::", "", true},
		{"127.0.0.1", "", false},
		{"::1", "", false},
		{"", "secret", false},
		{"192.168.1.5", "secret", false},
	} {
		w := noPasswordWarning(c.host, 6783, []byte(c.password))
		if (w != "") != c.warn {
			t.Errorf("host %q password %q: warning %q, want one: %v", c.host, c.password, w, c.warn)
		}
		if w != "" && (!strings.Contains(w, "not encrypted") || !strings.Contains(w, "--password-file") || strings.Contains(w, "\n")) {
			t.Errorf("host %q: warning %q does not say what it means and what to do on one line", c.host, w)
		}
	}
}

func TestNickNameChecked(t *testing.T) {
	g := &globals{stateDir: t.TempDir(), stdout: io.Discard, stderr: io.Discard}
	for nick, ok := range map[string]bool{
		"":                      true,
		"host1":                 true,
		"host-1.example.com":    true,
		"web_1":                 true,
		"two words":             false,
		"a\nb":                  false,
		"tab\t":                 false,
		strings.Repeat("n", 65): false,
	} {
		_, _, err := parseRouterFlags(g, "launch", []string{"--name", nick})
		if (err == nil) != ok {
			t.Errorf("launch --name %q: %v, want ok %v", nick, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--name") {
			t.Errorf("launch --name %q: %v does not name the flag", nick, err)
		}
	}
}

func TestFastDPFlags(t *testing.T) {
	g := &globals{stateDir: t.TempDir(), stdout: io.Discard, stderr: io.Discard}
	for _, tc := range []struct {
		args []string
		bad  string
	}{
		{nil, ""},
		{[]string{"--no-fastdp"}, ""},
		{[]string{"--fastdp-port", "4789"}, ""},
		{[]string{"--fastdp-port", "0"}, "--fastdp-port 0"},
		{[]string{"--fastdp-port", "70000"}, "--fastdp-port 70000"},
		{[]string{"--fastdp-port", "6783"}, "also --port"},
		{[]string{"--fastdp-port", "6783", "--no-fastdp"}, ""},
	} {
		_, _, err := parseRouterFlags(g, "launch", tc.args)
		if tc.bad == "" {
			if err != nil {
				t.Errorf("launch %q: %v", tc.args, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.bad) {
			t.Errorf("launch %q: %v, want an error naming %q", tc.args, err, tc.bad)
		}
	}
}
