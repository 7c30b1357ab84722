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

func TestIPAMSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	must(t, s.ResetIPAM("10.32.0.0/12"))
	a1, a2 := [4]byte{10, 32, 0, 1}, [4]byte{10, 32, 0, 2}
	must(t, s.PersistIPAM("10.32.0.0/12", []byte("ring1"), map[[4]byte]string{a1: "netns:c1", a2: "netns:c2"}, nil))
	must(t, s.PersistIPAM("10.32.0.0/12", nil, nil, [][4]byte{a1}))
	must(t, s.Close())
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng, pools, err := s.IPAM()
	if err != nil || rng != "10.32.0.0/12" || len(pools) != 1 {
		t.Fatalf("IPAM() = %q, %v, %v", rng, pools, err)
	}
	p := pools[0]
	if p.Pool != "10.32.0.0/12" || string(p.Ring) != "ring1" || !reflect.DeepEqual(p.Held, map[[4]byte]string{a2: "netns:c2"}) {
		t.Fatalf("pool = %+v", p)
	}
	must(t, s.ResetIPAM("10.40.0.0/16"))
	if rng, pools, _ := s.IPAM(); rng != "10.40.0.0/16" || len(pools) != 0 {
		t.Fatalf("after reset: %q %v", rng, pools)
	}
}
