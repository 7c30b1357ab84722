package state

import (
	"reflect"
	"testing"
)

func TestDNSRecordsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	recs := []DNSRecord{
		{Name: "c1.weft.local.", Addr: "10.32.0.1", Target: "netns:c1"},
		{Name: "db.weft.local.", Addr: "10.32.0.9"},
	}
	must(t, s.SetDNSRecords(recs[:1]))
	must(t, s.SetDNSRecords(recs))
	must(t, s.Close())
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.DNSRecords()
	if err != nil || !reflect.DeepEqual(got, recs) {
		t.Fatalf("DNSRecords = %v, %v; want %v", got, err, recs)
	}
	must(t, s.SetDNSRecords(nil))
	if got, err := s.DNSRecords(); err != nil || len(got) != 0 {
		t.Fatalf("after clearing: %v, %v", got, err)
	}
}
