// Package state persists what a weft router must remember across restarts:
// its peer name, the peers it was told to connect to, the targets attached
// to the weft network, the addresses exposed on the host and its own DNS
// records, and the address ranges and allocations of IPAM. It is a thin
// layer over one bbolt file in the router's state directory. A Store is
// safe for concurrent use.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FileName is the name of the database file inside the state directory.
const FileName = "weft.db"

var (
	bucketMeta        = []byte("meta")
	bucketAttachments = []byte("attachments")
	keyPeerName       = []byte("peername")
	keyTargets        = []byte("targets")
	keyExposed        = []byte("exposed")
	keySchema         = []byte("schema")
)

const schemaVersion = "1"

// ErrLocked is returned by Open when another process holds the database,
// which means another router is running on the same state directory.
var ErrLocked = errors.New("state database is in use by another weft router")

// Attachment is what the router remembers of one attached target.
type Attachment struct {
	// Target is the target as the user named it, e.g. "netns:c1".
	Target string `json:"target"`
	// Addrs are the addresses in CIDR notation.
	Addrs []string `json:"addrs"`
	// Name is the DNS name registered for the target ("" for none).
	Name string `json:"name,omitempty"`
	// WithoutDNS records that the user asked for no DNS registration.
	WithoutDNS bool `json:"without_dns,omitempty"`
	// PIDStart is, for a pid: target, the process's start time (field 22
	// of /proc/PID/stat) when it was attached: a re-attach after a
	// restart checks that the PID still names that process. 0 (records
	// made before it was kept) means unchecked.
	PIDStart uint64 `json:"pid_start,omitempty"`
	// SourceCheck records that the target may send only from its MAC and
	// the addresses weft gave it (Addrs). Records made before it was
	// kept have it off.
	SourceCheck bool `json:"source_check,omitempty"`
}

// Store is an open state database.
type Store struct {
	db *bolt.DB
}

// Open opens (creating if needed) the database in dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open state: create %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 500 * time.Millisecond})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open state %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketAttachments, bucketDNS, bucketIPAM} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keySchema); v != nil && string(v) != schemaVersion {
			return fmt.Errorf("unknown schema version %q (this weft understands %q); run 'weft reset' to start afresh", v, schemaVersion)
		}
		return meta.Put(keySchema, []byte(schemaVersion))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) getJSON(bucket, key []byte, v any) (bool, error) {
	var raw []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucket).Get(key); b != nil {
			raw = append([]byte(nil), b...)
		}
		return nil
	})
	if err != nil || raw == nil {
		return false, err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("decode %s/%s: %w", bucket, key, err)
	}
	return true, nil
}

func (s *Store) putJSON(bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", bucket, key, err)
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(key, raw) })
}

// PeerName returns the persisted peer name, or "" when none was stored.
func (s *Store) PeerName() (string, error) {
	var name string
	_, err := s.getJSON(bucketMeta, keyPeerName, &name)
	return name, err
}

// SetPeerName persists the peer name.
func (s *Store) SetPeerName(name string) error { return s.putJSON(bucketMeta, keyPeerName, name) }

// Targets returns the persisted list of peers to connect to.
func (s *Store) Targets() ([]string, error) {
	var t []string
	_, err := s.getJSON(bucketMeta, keyTargets, &t)
	return t, err
}

// SetTargets persists the list of peers to connect to.
func (s *Store) SetTargets(t []string) error { return s.putJSON(bucketMeta, keyTargets, t) }

// Exposed returns the persisted addresses exposed on the host.
func (s *Store) Exposed() ([]string, error) {
	var a []string
	_, err := s.getJSON(bucketMeta, keyExposed, &a)
	return a, err
}

// SetExposed persists the addresses exposed on the host.
func (s *Store) SetExposed(a []string) error { return s.putJSON(bucketMeta, keyExposed, a) }

// Attachments returns every persisted attachment, sorted by target.
func (s *Store) Attachments() ([]Attachment, error) {
	var out []Attachment
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAttachments).ForEach(func(k, v []byte) error {
			var a Attachment
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("decode attachment %s: %w", k, err)
			}
			out = append(out, a)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out, err
}

// PutAttachment stores or replaces the attachment of a.Target.
func (s *Store) PutAttachment(a Attachment) error {
	return s.putJSON(bucketAttachments, []byte(a.Target), a)
}

// DeleteAttachment forgets the attachment of target.
func (s *Store) DeleteAttachment(target string) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketAttachments).Delete([]byte(target)) })
}
