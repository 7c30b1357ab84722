package state

var (
	keyIdentity    = []byte("identity")
	keyRenamedFrom = []byte("renamed-from")
)

// Identity returns the persisted identity key seed (the router's private
// key), or nil when none was stored.
func (s *Store) Identity() ([]byte, error) {
	var seed []byte
	_, err := s.getJSON(bucketMeta, keyIdentity, &seed)
	return seed, err
}

// SetIdentity persists the identity key seed.
func (s *Store) SetIdentity(seed []byte) error { return s.putJSON(bucketMeta, keyIdentity, seed) }

// RenamedFrom returns the peer name this router had before its name came
// from its identity key, while the ranges of that name are still to be
// taken over; "" when there is none.
func (s *Store) RenamedFrom() (string, error) {
	var name string
	_, err := s.getJSON(bucketMeta, keyRenamedFrom, &name)
	return name, err
}

// SetRenamedFrom records (or, with "", clears) the former peer name.
func (s *Store) SetRenamedFrom(name string) error {
	return s.putJSON(bucketMeta, keyRenamedFrom, name)
}
