package daemon

import (
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/router/routertest"
	"github.com/weftnet/weft/state"
)

func TestParseProcStart(t *testing.T) {
	// Fields 3 to 21 of a real line, then the start time and two more.
	const rest = "S 1 1234 1234 0 -1 4194560 120 0 0 0 3 1 0 0 20 0 1 0 %s 10240000 300 18446744073709551615"
	for _, tc := range []struct {
		comm  string
		start string
		want  uint64
		ok    bool
	}{
		{"sleep", "987654", 987654, true},
		{"two words", "5", 5, true},
		{"a) b (c", "42", 42, true},
		{") 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22", "77", 77, true},
		{"((()))", "18446744073709551615", 18446744073709551615, true},
		{"", "1", 1, true},
		{"x", "-1", 0, false},
		{"x", "abc", 0, false},
	} {
		line := fmt.Sprintf("4321 (%s) "+rest+"\n", tc.comm, tc.start)
		got, err := parseProcStart([]byte(line))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("comm %q: got %d, %v; want %d (ok %v)", tc.comm, got, err, tc.want, tc.ok)
		}
	}
	for _, bad := range []string{"", "4321 sleep S 1", "4321 (sleep) S 1 2 3"} {
		if _, err := parseProcStart([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestProcessStartOfSelf(t *testing.T) {
	d := &Daemon{}
	a, err := d.processStart(os.Getpid())
	if err != nil || a == 0 {
		t.Fatalf("start of this process: %d, %v", a, err)
	}
	if b, _ := d.processStart(os.Getpid()); b != a {
		t.Errorf("start time changed: %d then %d", a, b)
	}
}

func TestPIDReattachChecksStartTime(t *testing.T) {
	nw := routertest.NewNetwork(31)
	dir, host := t.TempDir(), newFakeHost()
	host.starts = map[int]uint64{4242: 1000, 4343: 2000}
	r := startRouter(t, nw, dir, host, 10031)
	for _, tg := range []string{"pid:4242", "pid:4343"} {
		if _, err := r.client.Attach(control.AttachRequest{Target: tg, CIDRs: []string{"10.2.1." + tg[len(tg)-2:] + "/24"}}); err != nil {
			t.Fatalf("attach %s: %v", tg, err)
		}
	}
	r.stop()
	st, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	atts, _ := st.Attachments()
	for _, a := range atts {
		if want := host.starts[4242]; a.Target == "pid:4242" && a.PIDStart != want {
			t.Errorf("pid:4242 recorded start %d, want %d", a.PIDStart, want)
		}
	}
	// A record from before start times were kept: re-attached unchecked.
	if err := st.PutAttachment(state.Attachment{Target: "pid:4444", Addrs: []string{"10.2.1.44/24"}}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	// Reboot: PID 4242 now names another process; 4343 is the same one;
	// 4444 has no start time on record.
	host.Reset("")
	host.mu.Lock()
	host.starts[4242] = 1500
	host.mu.Unlock()
	r = startRouter(t, nw, dir, host, 10031)
	var got []string
	for _, a := range r.report(t).Attachments {
		got = append(got, a.Target)
	}
	slices.Sort(got)
	if want := []string{"pid:4343", "pid:4444"}; !slices.Equal(got, want) {
		t.Errorf("after reboot with PID 4242 reused: attachments %v, want %v", got, want)
	}
	host.mu.Lock()
	_, reattached := host.atts["pid:4242"]
	host.mu.Unlock()
	if reattached {
		t.Errorf("pid:4242 re-attached into another process")
	}
}
