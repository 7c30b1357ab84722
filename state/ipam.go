package state

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketIPAM holds one nested bucket per address pool (named by its CIDR):
// key "ring.v1" is the pool's ring as IPAM encodes it, and every other key is
// a held address (its 4 bytes) whose value is the ident holding it. Key
// "range" of the IPAM bucket itself is the --ipalloc-range the data
// belongs to.
var (
	bucketIPAM = []byte("ipam")
	keyRing    = []byte("ring.v1")
	keyRange   = []byte("range")
)

// IPAMPool is one persisted address pool.
type IPAMPool struct {
	// Pool is the pool's CIDR.
	Pool string
	// Ring is the encoded ring (nil if none was saved).
	Ring []byte
	// Held maps each address held on this router (4 bytes, as a string) to
	// what holds it.
	Held map[[4]byte]string
}

// IPAM returns the --ipalloc-range the persisted IPAM state belongs to ("" if
// none) and its pools.
func (s *Store) IPAM() (string, []IPAMPool, error) {
	var rng string
	var out []IPAMPool
	err := s.db.View(func(tx *bolt.Tx) error {
		top := tx.Bucket(bucketIPAM)
		rng = string(top.Get(keyRange))
		return top.ForEachBucket(func(name []byte) error {
			b := top.Bucket(name)
			p := IPAMPool{Pool: string(name), Held: map[[4]byte]string{}}
			if r := b.Get(keyRing); r != nil {
				p.Ring = append([]byte(nil), r...)
			}
			err := b.ForEach(func(k, v []byte) error {
				if len(k) == 4 {
					p.Held[[4]byte(k)] = string(v)
				}
				return nil
			})
			out = append(out, p)
			return err
		})
	})
	if err != nil {
		return "", nil, fmt.Errorf("read IPAM state: %w", err)
	}
	return rng, out, nil
}

// ResetIPAM drops every persisted pool and records that what follows belongs
// to --ipalloc-range rng.
func (s *Store) ResetIPAM(rng string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketIPAM); err != nil {
			return fmt.Errorf("reset IPAM state: %w", err)
		}
		b, err := tx.CreateBucket(bucketIPAM)
		if err != nil {
			return fmt.Errorf("reset IPAM state: %w", err)
		}
		return b.Put(keyRange, []byte(rng))
	})
}

// PersistIPAM records one change of a pool in one transaction: its ring
// (unless nil), the addresses now held and those freed.
func (s *Store) PersistIPAM(pool string, ring []byte, held map[[4]byte]string, freed [][4]byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketIPAM).CreateBucketIfNotExists([]byte(pool))
		if err != nil {
			return fmt.Errorf("persist IPAM pool %s: %w", pool, err)
		}
		if ring != nil {
			if err := b.Put(keyRing, ring); err != nil {
				return fmt.Errorf("persist IPAM pool %s: %w", pool, err)
			}
		}
		for a, ident := range held {
			if err := b.Put(a[:], []byte(ident)); err != nil {
				return fmt.Errorf("persist IPAM address: %w", err)
			}
		}
		for _, a := range freed {
			if err := b.Delete(a[:]); err != nil {
				return fmt.Errorf("persist IPAM address: %w", err)
			}
		}
		return nil
	})
}
