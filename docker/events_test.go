package docker

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// next returns the next event, failing the test after timeout.
func next(t *testing.T, ch <-chan Event, timeout time.Duration) Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("event channel closed")
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no event within %v", timeout)
	}
	return Event{}
}

// quiet fails the test if an event arrives within d.
func quiet(t *testing.T, ch <-chan Event, d time.Duration) {
	t.Helper()
	select {
	case ev := <-ch:
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(d):
	}
}

// TestEventsRecorded plays a stream recorded from dockerd 20.10 (network
// disconnect and connect, rename, stop, start, rm -f), which the server
// then drops; Events passes on the wanted events after a resync, opens the
// stream again after the backoff, and resyncs again.
func TestEventsRecorded(t *testing.T) {
	f := newFakeEngine(t)
	recorded := strings.Split(strings.TrimSpace(readTestdata(t, "events.jsonl")), "\n")
	dropped := make(chan time.Time, 1)
	f.setEvents(func(w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 1:
			streamLines(w, r, false, recorded...)
			dropped <- time.Now()
		default:
			streamLines(w, r, true, `{"Type":"container","Action":"start","Actor":{"ID":"c2"},"time":1700000000,"timeNano":1700000000000000123}`)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := f.client(t).Events(ctx)

	if ev := next(t, ch, 5*time.Second); ev.Action != ActionResync || ev.Type != "" {
		t.Fatalf("first event %+v, want a resync", ev)
	}
	type short struct{ typ, action, ctr, net string }
	c, n := realID, realNetID
	want := []short{
		{"network", "disconnect", c, n}, {"network", "disconnect", c, n}, {"network", "connect", c, n},
		{"container", "rename", c, ""}, {"container", "die", c, ""}, {"network", "disconnect", c, n},
		{"network", "connect", c, n}, {"container", "start", c, ""}, {"container", "die", c, ""},
		{"network", "disconnect", c, n}, {"container", "destroy", c, ""},
	}
	for i, w := range want {
		ev := next(t, ch, 5*time.Second)
		if got := (short{ev.Type, ev.Action, ev.ContainerID, ev.NetworkID}); got != w {
			t.Fatalf("event %d: %+v, want %+v", i, got, w)
		}
		if ev.Time.Year() != 2026 {
			t.Errorf("event %d: time %v, want the recorded one", i, ev.Time)
		}
	}
	ev := next(t, ch, 5*time.Second)
	if ev.Action != ActionResync {
		t.Fatalf("after the stream was dropped: %+v, want a resync", ev)
	}
	if d := time.Since(<-dropped); d < 90*time.Millisecond {
		t.Errorf("reopened %v after the drop; want the 100 ms backoff", d)
	}
	ev = next(t, ch, 5*time.Second)
	if ev.Action != ActionStart || ev.ContainerID != "c2" || ev.Time.UnixNano() != 1700000000000000123 {
		t.Errorf("event on the new stream: %+v", ev)
	}

	// Docker was asked for the wanted events only.
	for _, r := range f.Requests() {
		if !strings.Contains(r, "/events") {
			continue
		}
		u, err := url.ParseRequestURI(strings.Fields(r)[1])
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(u.Path, "/v1.41/") {
			t.Errorf("events asked with %s; want API 1.41", u.Path)
		}
		var filters map[string]map[string]bool
		if err := json.Unmarshal([]byte(u.Query().Get("filters")), &filters); err != nil {
			t.Fatalf("filters %q: %v", u.Query().Get("filters"), err)
		}
		if len(filters["type"]) != 2 || len(filters["event"]) != 6 || !filters["event"]["destroy"] {
			t.Errorf("filters %v", filters)
		}
	}
}

// TestEventsDockerLater: Events started while Docker is not there gets its
// stream (and a resync) once Docker comes.
func TestEventsDockerLater(t *testing.T) {
	sock := fakeSocket(t)
	c, err := newClient(nil, client.WithHost("unix://"+sock))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := c.Events(ctx)
	quiet(t, ch, 400*time.Millisecond)
	startFakeEngine(t, sock)
	if ev := next(t, ch, 5*time.Second); ev.Action != ActionResync {
		t.Fatalf("first event %+v, want a resync", ev)
	}
	quiet(t, ch, 200*time.Millisecond)
}

// TestEventsHostile: a stream refused with 500, one with an endless line,
// one of garbage, and one that lists unwanted and malformed events: no
// resync for the refused one, a resync for each that was opened, and only
// well-formed wanted events.
func TestEventsHostile(t *testing.T) {
	f := newFakeEngine(t)
	f.setEvents(func(w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 1:
			fail(w, http.StatusInternalServerError, "not now")
		case 2:
			w.WriteHeader(http.StatusOK)
			w.Write([]byte(`{"Type":"container","Action":"start","Actor":{"ID":"`))
			chunk := []byte(strings.Repeat("x", 64<<10))
			for i := 0; i < 64; i++ { // 4 MiB with no newline
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case 3:
			streamLines(w, r, false, `{"Type":"container","Action":"start","Actor":{"ID":"a"}}`, `{{{garbage`)
		default:
			streamLines(w, r, true,
				`{"Type":"container","Action":"exec_start: sh","Actor":{"ID":"a"}}`,
				`{"Type":"image","Action":"pull","Actor":{"ID":"busybox"}}`,
				`{"Type":"container","Action":"die","Actor":{}}`,
				`{"Type":"network","Action":"connect","Actor":{"ID":"n"}}`,
				`{"Type":"container","Action":"create","Actor":{"ID":"a"}}`,
				`{"status":"die","id":"old-style"}`,
				`{"Type":"container","Action":"die","Actor":{"ID":"b"}}`)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := f.client(t).Events(ctx)
	var got []string
	for len(got) < 5 {
		ev := next(t, ch, 10*time.Second)
		got = append(got, ev.Action+":"+ev.ContainerID)
	}
	want := "resync: resync: start:a resync: die:b"
	if strings.Join(got, " ") != want {
		t.Fatalf("events %q, want %q", strings.Join(got, " "), want)
	}
	quiet(t, ch, 200*time.Millisecond)
}

// TestEventsEnd: the channel closes once ctx ends, and no goroutine of
// Events (or of the stream it held open) is left.
func TestEventsEnd(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, open := range []bool{true, false} {
		f := newFakeEngine(t)
		c := f.client(t)
		if !open {
			f.close() // Events while Docker is away
		}
		ctx, cancel := context.WithCancel(context.Background())
		ch := c.Events(ctx)
		if open {
			next(t, ch, 5*time.Second)
		} else {
			quiet(t, ch, 300*time.Millisecond)
		}
		cancel()
		select {
		case ev, ok := <-ch:
			if ok {
				t.Fatalf("event %+v after cancel; want the channel closed", ev)
			}
		case <-time.After(time.Second):
			t.Fatal("channel not closed within 1 s of cancel")
		}
		c.Close()
		f.close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
