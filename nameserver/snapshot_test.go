package nameserver

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestSnapshotAndStatus(t *testing.T) {
	s := newTestStore(t, peerA, newFakeClock())
	mustAdd(t, s, "Web.weft.local.", "10.32.0.2", "netns:c1")
	mustAdd(t, s, "db.weft.local.", "10.32.0.3", "")
	mustAdd(t, s, "old.weft.local.", "10.32.0.4", "")
	s.Remove(Filter{Name: "old.weft.local."})
	s.Merge(NewRecordSet(Record{Name: "x.other.", Addr: ip("10.32.0.5"), Owner: peerB, Version: 2}))

	live := s.Snapshot(false)
	if len(live) != 3 || len(s.Snapshot(true)) != 4 {
		t.Fatalf("live %v", live)
	}
	var b bytes.Buffer
	if err := WriteStatus(&b, live, "weft.local."); err != nil {
		t.Fatal(err)
	}
	want := "db        10.32.0.3  0a:00:00:00:00:01\n" +
		"Web       10.32.0.2  0a:00:00:00:00:01\n" +
		"x.other.  10.32.0.5  0a:00:00:00:00:02\n"
	if b.String() != want {
		t.Fatalf("status:\n%s\nwant:\n%s", b.String(), want)
	}
	js, err := json.Marshal(live[:1])
	if err != nil {
		t.Fatal(err)
	}
	if got := string(js); got != `[{"name":"db.weft.local.","address":"10.32.0.3","owner":"0a:00:00:00:00:01","version":1}]` {
		t.Fatalf("JSON %s", got)
	}
}

func TestQualifyName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"c1", "c1.weft.local."},
		{"C1.", "C1.weft.local."},
		{"Web.Weft.Local", "Web.Weft.Local."},
		{"a.b.weft.local.", "a.b.weft.local."},
		{"example.com", ""},
		{"weft.local", ""},
		{"", ""},
		{"bad..name", ""},
	} {
		got, err := QualifyName(tc.in, "weft.local.")
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("QualifyName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
