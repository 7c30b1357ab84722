//go:build race

package ipam

// raceEnabled shortens the slowest tests under the race detector, which
// makes them about eight times slower.
const raceEnabled = true
