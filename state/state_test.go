package state

import (
	"errors"
	"reflect"
	"testing"
)

func TestRoundTripSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if name, err := s.PeerName(); err != nil || name != "" {
		t.Fatalf("fresh store: name %q err %v", name, err)
	}
	must(t, s.SetPeerName("7a:00:00:00:00:01"))
	must(t, s.SetTargets([]string{"10.0.0.1", "10.0.0.2:6783"}))
	must(t, s.SetExposed([]string{"10.2.1.254/24"}))
	must(t, s.PutAttachment(Attachment{Target: "netns:c2", Addrs: []string{"10.2.1.2/24"}}))
	must(t, s.PutAttachment(Attachment{Target: "netns:c1", Addrs: []string{"10.2.1.1/24"}, Name: "c1"}))
	must(t, s.PutAttachment(Attachment{Target: "netns:c3", Addrs: []string{"10.2.1.3/24"}}))
	must(t, s.DeleteAttachment("netns:c3"))
	must(t, s.Close())

	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	name, _ := s.PeerName()
	targets, _ := s.Targets()
	exposed, _ := s.Exposed()
	atts, err := s.Attachments()
	must(t, err)
	if name != "7a:00:00:00:00:01" || !reflect.DeepEqual(targets, []string{"10.0.0.1", "10.0.0.2:6783"}) ||
		!reflect.DeepEqual(exposed, []string{"10.2.1.254/24"}) {
		t.Fatalf("got name %q targets %v exposed %v", name, targets, exposed)
	}
	want := []Attachment{
		{Target: "netns:c1", Addrs: []string{"10.2.1.1/24"}, Name: "c1"},
		{Target: "netns:c2", Addrs: []string{"10.2.1.2/24"}},
	}
	if !reflect.DeepEqual(atts, want) {
		t.Fatalf("attachments %+v, want %+v", atts, want)
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: got %v, want ErrLocked", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestPluginState(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := s.LoadPlugin(); err != nil || data != nil {
		t.Fatalf("fresh store: %q, %v", data, err)
	}
	if err := s.SavePlugin([]byte(`{"Networks":{}}`)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if data, err := s.LoadPlugin(); err != nil || string(data) != `{"Networks":{}}` {
		t.Fatalf("after reopen: %q, %v", data, err)
	}
}
