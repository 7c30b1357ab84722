//go:build race

package router

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// paths that use pools (the key ring's nonces) allocate under -race.
const raceEnabled = true
