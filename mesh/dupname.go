package mesh

// Duplicate peer names. A peer name must belong to one router. Two
// routers started with the same name (a copied state directory, a name
// given twice on the command line) used to knock each other off: a peer
// that held one replaced its connection whenever the other connected,
// and each fought for its topology entry by bumping its version above
// the other's, for ever. Now:
//
//   - a connection whose remote claims our own name with another UID is
//     refused on both ends with ErrDuplicateName (not ErrConnectToSelf,
//     so the target is retried and status says why);
//   - a connection whose remote claims the name of a peer we hold a live
//     connection to, with another UID, from another IP or with another
//     nickname, is refused; the live one is kept (see register). The same
//     IP and nickname is taken for a restart and replaces it at once;
//   - topology entries from another incarnation of a peer we hold a
//     connection to are ignored (the neighbour's own word wins), and an
//     entry of another router with our name makes us raise our version
//     above it at most maxNameClashBumps times (a restart needs one).

// maxNameClashBumps is how often an entry with our name and a foreign
// UID may raise our version. An old incarnation of ourselves needs one
// raise; a live router with our name would raise for ever.
const maxNameClashBumps = 3

// maxNameClashes bounds the clashes remembered (for the bump count and
// to log each once).
const maxNameClashes = 256

// nameClash is a topology entry's name with a UID that clashes with the
// router we know under that name.
type nameClash struct {
	name PeerName
	uid  uint64
}

// sameHost reports whether two connections with the same peer name but
// different UIDs look like two incarnations of one router (a restart):
// the same remote IP and nickname. Otherwise the newcomer is another
// router using the name. A router restarted at a new address or under a
// new nickname is refused until the old connection is closed (at the
// latest after the heartbeat timeout).
func sameHost(old, c *conn) bool {
	return old.remoteAddr.Addr() == c.remoteAddr.Addr() && old.remote.NickName == c.remote.NickName
}

// dropNameClashesLocked returns the received entries without those that
// describe another router under the name of ourselves (beyond the
// bumps allowed) or of a peer we hold a connection to. in is not
// modified; each clash is logged once.
func (n *Node) dropNameClashesLocked(in []peerEntry) []peerEntry {
	out := make([]peerEntry, 0, len(in))
	for _, e := range in {
		k := nameClash{e.Name, e.UID}
		switch c := n.conns[e.Name]; {
		case e.Name == n.cfg.Name && e.UID != n.uid:
			if n.clashes[k] >= maxNameClashBumps {
				continue
			}
			if e.Version >= n.version && n.noteClashLocked(k) == maxNameClashBumps {
				n.log.Warn("another router uses our peer name; ignoring its topology from now on",
					"name", e.Name.String(), "uid", e.UID, "nickname", e.NickName)
			}
		case c != nil && c.remote.UID != e.UID:
			if n.noteClashLocked(k) == 1 {
				n.log.Warn("ignoring topology of another router with a connected peer's name", "name", e.Name.String(),
					"uid", e.UID, "nickname", e.NickName, "connected_uid", c.remote.UID, "connected_nickname", c.remote.NickName)
			}
			continue
		}
		out = append(out, e)
	}
	return out
}

// noteClashLocked counts a clash and returns its count. When the map is
// full, it starts again empty.
func (n *Node) noteClashLocked(k nameClash) int {
	if _, ok := n.clashes[k]; !ok && len(n.clashes) >= maxNameClashes {
		n.clashes = nil
	}
	if n.clashes == nil {
		n.clashes = map[nameClash]int{}
	}
	n.clashes[k]++
	return n.clashes[k]
}
