package docker

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// TestListRunning: what dockerd 20.10 lists, kept as ID and command;
// entries without an ID are left out; Docker away is ErrUnreachable.
func TestListRunning(t *testing.T) {
	f := newFakeEngine(t)
	f.list = `[{"Id":"aaa","Names":["/web"],"Image":"busybox","Command":"/.weft/weft wait-for-interface -- httpd -f","State":"running"},
		{"Names":["/odd"]},{"Id":"bbb","Command":"sleep 60","Ports":[],"Labels":{}}]`
	got, err := f.client(t).ListRunning(context.Background())
	want := []Running{{ID: "aaa", Command: "/.weft/weft wait-for-interface -- httpd -f"}, {ID: "bbb", Command: "sleep 60"}}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ListRunning = %+v, %v; want %+v", got, err, want)
	}
	if reqs := f.Requests(); len(reqs) == 0 || !slices.ContainsFunc(reqs, func(r string) bool { return r == "GET /v1.41/containers/json" }) {
		t.Errorf("requests %v: want a plain list of running containers", reqs)
	}
	f.close()
	if _, err := f.client(t).ListRunning(context.Background()); !errors.Is(err, ErrUnreachable) {
		t.Errorf("Docker gone: %v, want ErrUnreachable", err)
	}
}
