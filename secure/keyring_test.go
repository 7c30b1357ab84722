package secure

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"
)

// sealedDatagram is one datagram in flight between two key rings.
type sealedDatagram struct {
	keyID   uint8
	epoch   uint32
	counter uint64
	hdr     []byte
	body    []byte
	want    string
}

func sealOne(t testing.TB, r *KeyRing, now time.Time, payload string) sealedDatagram {
	t.Helper()
	s, c, err := r.Reserve(now)
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	hdr := []byte{1, 1, 1, s.KeyID(), 0, 0, 0, 0, 0, 0, 0, 0, byte(c >> 8), byte(c)}
	body := make([]byte, len(payload), len(payload)+TagLen)
	copy(body, payload)
	sealed, err := s.Seal(c, hdr, body)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return sealedDatagram{keyID: s.KeyID(), epoch: s.Epoch(), counter: c, hdr: hdr, body: sealed, want: payload}
}

func openOne(r *KeyRing, d sealedDatagram, now time.Time) error {
	got, err := r.Open(d.keyID, d.counter, d.hdr, append([]byte(nil), d.body...), now)
	if err != nil {
		return err
	}
	if string(got) != d.want {
		return fmt.Errorf("opened %q, want %q", got, d.want)
	}
	return nil
}

// TestRekeyUnderLoad seals a continuous stream through many rekeys
// (by counter and by time), delivers it reordered across epoch boundaries,
// and expects every datagram to open exactly once.
func TestRekeyUnderLoad(t *testing.T) {
	policies := []struct {
		name string
		p    RekeyPolicy
	}{
		{"by counter", RekeyPolicy{AfterMessages: 100, After: time.Hour, Grace: time.Second}},
		{"by time", RekeyPolicy{After: 150 * time.Millisecond, Grace: time.Second}},
	}
	for _, s := range suites {
		for _, pol := range policies {
			t.Run(s.String()+"/"+pol.name, func(t *testing.T) { rekeyUnderLoad(t, s, pol.p) })
		}
	}
}

// rekeyUnderLoad sends 5000 datagrams, one per millisecond of fake time,
// delivered in shuffled groups of 40, and expects all to open.
func rekeyUnderLoad(t *testing.T, s Suite, p RekeyPolicy) {
	now := time.Unix(1_000_000, 0)
	a, b, err := NewLinkedKeyRings(s, p, now)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const n, reorder = 5000, 40
	var flight []sealedDatagram
	delivered, epochs := 0, map[uint32]bool{}
	deliver := func(d sealedDatagram) {
		if err := openOne(b, d, now); err != nil {
			t.Fatalf("datagram epoch %d counter %d lost: %v", d.epoch, d.counter, err)
		}
		delivered++
		epochs[d.epoch] = true
	}
	for i := range n {
		now = now.Add(time.Millisecond)
		flight = append(flight, sealOne(t, a, now, fmt.Sprintf("frame %d", i)))
		if len(flight) == reorder {
			rng.Shuffle(len(flight), func(i, j int) { flight[i], flight[j] = flight[j], flight[i] })
			for _, d := range flight {
				deliver(d)
			}
			flight = flight[:0]
		}
	}
	for _, d := range flight {
		deliver(d)
	}
	if delivered != n {
		t.Fatalf("delivered %d of %d", delivered, n)
	}
	if len(epochs) < 30 {
		t.Fatalf("only %d epochs for %d datagrams", len(epochs), n)
	}
	if st := b.Status(); st.RecvEpoch+1 < a.Status().SendEpoch {
		t.Fatalf("receiver at epoch %d, sender at %d", st.RecvEpoch, a.Status().SendEpoch)
	}
}

func TestKeyRingGrace(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := RekeyPolicy{AfterMessages: 2, Grace: 5 * time.Second}
	a, b, err := NewLinkedKeyRings(SuiteChaCha20Poly1305, p, t0)
	if err != nil {
		t.Fatal(err)
	}
	old1 := sealOne(t, a, t0, "epoch 0 #0")
	old2 := sealOne(t, a, t0, "epoch 0 #1")
	fresh := sealOne(t, a, t0, "epoch 1")
	if old1.epoch != 0 || fresh.epoch != 1 {
		t.Fatalf("epochs %d, %d; want 0, 1", old1.epoch, fresh.epoch)
	}
	if err := openOne(b, fresh, t0); err != nil {
		t.Fatal(err)
	}
	if err := openOne(b, old1, t0.Add(4*time.Second)); err != nil {
		t.Fatalf("previous key inside grace: %v", err)
	}
	if err := openOne(b, old2, t0.Add(5*time.Second)); !errors.Is(err, ErrExpiredKey) {
		t.Fatalf("previous key after grace: %v, want ErrExpiredKey", err)
	}
	if err := b.Tick(t0.Add(6 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := openOne(b, old2, t0.Add(6*time.Second)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("previous key after Tick: %v, want ErrUnknownKey", err)
	}
	// Two epochs ahead is unknown: the ring only looks one epoch ahead.
	sealOne(t, a, t0, "epoch 1 #1")
	skip := sealOne(t, a, t0, "epoch 2")
	far := sealOne(t, a, t0, "epoch 2 #1")
	far = sealOne(t, a, t0, "epoch 3")
	if far.epoch != 3 {
		t.Fatalf("epoch %d, want 3", far.epoch)
	}
	if err := openOne(b, far, t0); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("two epochs ahead: %v, want ErrUnknownKey", err)
	}
	if err := openOne(b, skip, t0); err != nil {
		t.Fatalf("next epoch after a lost one: %v", err)
	}
}

// TestKeyRingLateByEpochs: a datagram sealed up to maxPrevKeys epochs
// before the receiver's current one still opens within its grace (a
// heartbeat sealed by one goroutine while another sealed two epochs'
// worth of frames); one sealed further back, or after the grace, does
// not.
func TestKeyRingLateByEpochs(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a, b, err := NewLinkedKeyRings(SuiteChaCha20Poly1305, RekeyPolicy{AfterMessages: 2, Grace: 5 * time.Second}, t0)
	if err != nil {
		t.Fatal(err)
	}
	// Two datagrams per epoch; the first of each arrives in order, the
	// second only after the receiver moved maxPrevKeys+1 epochs on.
	var first, second []sealedDatagram
	for range maxPrevKeys + 2 {
		first = append(first, sealOne(t, a, t0, "first"))
		second = append(second, sealOne(t, a, t0, "second"))
	}
	for _, x := range first {
		if err := openOne(b, x, t0); err != nil {
			t.Fatalf("first datagram of epoch %d: %v", x.epoch, err)
		}
	}
	newest := first[len(first)-1].epoch
	for _, x := range second {
		err := openOne(b, x, t0.Add(4*time.Second))
		switch back := newest - x.epoch; {
		case back > maxPrevKeys && !errors.Is(err, ErrUnknownKey):
			t.Errorf("datagram %d epochs back: %v, want ErrUnknownKey", back, err)
		case back <= maxPrevKeys && err != nil:
			t.Errorf("datagram %d epochs back, inside the grace: %v", back, err)
		}
	}
	// After the grace, Tick forgets the earlier keys.
	late := sealedDatagram{keyID: second[len(second)-2].keyID, counter: 5, hdr: second[len(second)-2].hdr, body: second[len(second)-2].body}
	if err := b.Tick(t0.Add(6 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := openOne(b, late, t0.Add(6*time.Second)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("earlier key after the grace: %v, want ErrUnknownKey", err)
	}
}

// TestKeyRingEpochKeysDiffer checks that a datagram claiming another
// epoch's key id fails authentication.
func TestKeyRingEpochKeysDiffer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a, b, _ := NewLinkedKeyRings(SuiteAES256GCM, RekeyPolicy{AfterMessages: 1}, t0)
	d0 := sealOne(t, a, t0, "zero")
	d1 := sealOne(t, a, t0, "one")
	d1.keyID = d0.keyID
	if err := openOne(b, d1, t0); !errors.Is(err, ErrForged) {
		t.Fatalf("epoch 1 datagram under epoch 0 key: %v, want ErrForged", err)
	}
}

func TestKeyRingTimeRekey(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a, b, _ := NewLinkedKeyRings(SuiteChaCha20Poly1305, RekeyPolicy{After: time.Minute}, t0)
	if d := sealOne(t, a, t0.Add(59*time.Second), "x"); d.epoch != 0 {
		t.Fatalf("epoch %d before expiry", d.epoch)
	}
	d := sealOne(t, a, t0.Add(61*time.Second), "y")
	if d.epoch != 1 {
		t.Fatalf("epoch %d after expiry, want 1", d.epoch)
	}
	if err := openOne(b, d, t0); err != nil {
		t.Fatal(err)
	}
	if err := a.Tick(t0.Add(122 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if st := a.Status(); st.SendEpoch != 2 || st.Suite != SuiteChaCha20Poly1305 {
		t.Fatalf("after Tick: %+v", st)
	}
}

// TestKeyRingConcurrentSealers checks that goroutines sealing through
// rekeys never reuse an (epoch, counter) pair and that all datagrams open.
func TestKeyRingConcurrentSealers(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a, b, _ := NewLinkedKeyRings(SuiteChaCha20Poly1305, RekeyPolicy{AfterMessages: 64}, t0)
	const workers, each = 4, 500
	out := make([][]sealedDatagram, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				out[w] = append(out[w], sealOne(t, a, t0, fmt.Sprintf("w%d-%d", w, i)))
			}
		})
	}
	wg.Wait()
	var all []sealedDatagram
	seen := map[[2]uint64]bool{}
	for _, ds := range out {
		for _, d := range ds {
			k := [2]uint64{uint64(d.epoch), d.counter}
			if seen[k] {
				t.Fatalf("epoch %d counter %d used twice", d.epoch, d.counter)
			}
			seen[k] = true
			all = append(all, d)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].epoch != all[j].epoch {
			return all[i].epoch < all[j].epoch
		}
		return all[i].counter < all[j].counter
	})
	var mu sync.Mutex
	lost := 0
	const chunk = 32 // two receivers in parallel, in step chunk by chunk
	for start := 0; start < len(all); start += chunk {
		for part := range 2 {
			wg.Go(func() {
				for i := start + part; i < min(start+chunk, len(all)); i += 2 {
					if err := openOne(b, all[i], t0); err != nil {
						mu.Lock()
						if lost < 5 {
							t.Logf("epoch %d counter %d: %v", all[i].epoch, all[i].counter, err)
						}
						lost++
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
	}
	if lost != 0 {
		t.Errorf("%d of %d datagrams lost", lost, len(all))
	}
}

func TestKeyRingAllocs(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, s := range suites {
		a, b, _ := NewLinkedKeyRings(s, RekeyPolicy{}, t0)
		buf := make([]byte, 20+1400+TagLen)
		hdr, body := buf[:20], buf[20:1420]
		allocs := testing.AllocsPerRun(1000, func() {
			sl, c, err := a.Reserve(t0)
			if err != nil {
				t.Fatal(err)
			}
			sealed, err := sl.Seal(c, hdr, body)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Open(sl.KeyID(), c, hdr, sealed, t0); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: %v allocations per datagram, want 0", s, allocs)
		}
	}
}
