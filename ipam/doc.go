// Package ipam shares address ranges out among the routers of a mesh with
// no coordinator, so that every attached target gets an address no other
// target holds.
//
// Each pool (the --ipalloc-range, and any subnet Docker asks for) is a ring
// of ranges: sorted tokens, each the start of a range that runs to the next
// token, with an owner, a version and the owner's count of free addresses.
// Only a range's owner allocates in it, and only the owner changes its
// tokens (it splits a range to give part of it to a peer that asks, and
// bumps the version whenever its free count changes); the one exception is
// `rmpeer`, which takes over a dead peer's tokens. Rings are merged token
// by token, the higher version winning (equal versions: the lower owner
// name), so the merge is commutative, associative and idempotent and every
// router converges to the same ring. Tokens are never removed, so the
// ranges always tile the whole pool. Changes travel as deltas (the
// entries that changed); a router with no ring, or a younger one, adopts
// only a whole ring (Gossip, or the answer to its request), since a delta
// lacks the tokens that end its ranges.
//
// A ring is seeded lazily by the first router that needs an address: a
// router alone, or the lowest-named of the routers it reaches, takes the
// whole pool at once; the others borrow from it. Two meshes that seeded
// the same pool apart carry different seeds; when they meet, the older
// seed wins everywhere, the routers of the younger one adopt the older
// ring and claim from its owners, one by one, the addresses they hold,
// while the older side keeps the younger ring's used ranges out of
// allocation (a quarantine, lifted when the claims are answered or after
// Config.Quarantine). A claim that finds the address held on the other
// side too is a conflict, reported in Status and the log; when one of the
// two holders lets go the other keeps it. Nothing is handed out twice by
// a router that has heard of the other side, and no connection is
// dropped.
//
// The package is pure: it reaches other routers through a Transport and
// learns who is reachable through Peers; it persists through a Persister.
// An Allocator is safe for concurrent use. It calls the Persister under its
// lock, so that what is persisted is what was decided, and the Transport
// only after releasing it.
package ipam
