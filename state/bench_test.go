package state

import "testing"

// BenchmarkPersistIPAM is the cost of persisting one allocation (one bbolt
// transaction with its fsync): what an attach with an automatic address
// adds on top of the allocator's own work.
func BenchmarkPersistIPAM(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ring := make([]byte, 400)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := [4]byte{10, 32, byte(i >> 8), byte(i)}
		if err := s.PersistIPAM("10.32.0.0/12", ring, map[[4]byte]string{a: "netns:c1"}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
