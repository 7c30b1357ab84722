package state

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketDNS holds this router's own DNS records, so that a restarted
// router registers them again and the mesh sees them come back.
var bucketDNS = []byte("dns")

// DNSRecord is one of this router's own DNS records.
type DNSRecord struct {
	// Name is the fully qualified name as registered.
	Name string `json:"name"`
	// Addr is the IPv4 address.
	Addr string `json:"addr"`
	// Target is what the address belongs to ("netns:c1"), "" for a name
	// added by hand.
	Target string `json:"target,omitempty"`
}

func (r DNSRecord) key() []byte { return []byte(r.Name + " " + r.Addr + " " + r.Target) }

// DNSRecords returns the persisted own DNS records, in key order.
func (s *Store) DNSRecords() ([]DNSRecord, error) {
	var out []DNSRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDNS).ForEach(func(k, v []byte) error {
			var r DNSRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode DNS record %q: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// SetDNSRecords replaces the persisted own DNS records with recs, in one
// transaction.
func (s *Store) SetDNSRecords(recs []DNSRecord) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketDNS); err != nil {
			return fmt.Errorf("replace DNS records: %w", err)
		}
		b, err := tx.CreateBucket(bucketDNS)
		if err != nil {
			return fmt.Errorf("replace DNS records: %w", err)
		}
		for _, r := range recs {
			v, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("encode DNS record: %w", err)
			}
			if err := b.Put(r.key(), v); err != nil {
				return fmt.Errorf("store DNS record %s: %w", r.Name, err)
			}
		}
		return nil
	})
}
