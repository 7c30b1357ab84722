package state

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// bucketDocker holds the Docker plugin's state: its networks, pools and
// endpoints, which Docker does not create again after a restart.
var (
	bucketDocker = []byte("docker")
	keyPlugin    = []byte("plugin.v1")
)

// LoadPlugin returns the Docker plugin's saved state (nil when none).
func (s *Store) LoadPlugin() ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketDocker); b != nil {
			out = bytes.Clone(b.Get(keyPlugin))
		}
		return nil
	})
	return out, err
}

// SavePlugin replaces the Docker plugin's saved state.
func (s *Store) SavePlugin(data []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketDocker)
		if err != nil {
			return err
		}
		return b.Put(keyPlugin, data)
	})
}
