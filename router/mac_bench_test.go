package router

import (
	"testing"
	"time"
)

// fullTable returns a table of the default size, full of MACs behind peer
// 1, whose port limit lets peer 2 learn.
func fullTable() *macTable {
	const size = 16384
	m := newMACTable(10*time.Minute, time.Second, size, size)
	for i := range size {
		m.learn(key(1, i), 1, 0)
	}
	return m
}

// BenchmarkMACLearnFull learns one new MAC per op into a full table of
// the default size, in batches of 32 as the readers do.
func BenchmarkMACLearnFull(b *testing.B) {
	m := fullTable()
	var pend []macPending
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		m.observe(key(2, i), 2, 1, &pend)
		if len(pend) == 32 {
			m.insert(pend)
			pend = pend[:0]
		}
	}
}

// BenchmarkMACLearnFullOne learns one new MAC per op, inserting it at once.
func BenchmarkMACLearnFullOne(b *testing.B) {
	m := fullTable()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		m.learn(key(2, i), 2, 1)
	}
}

// BenchmarkMACFloodRefused learns new MACs of a port at its limit, in
// batches of 32: each is refused.
func BenchmarkMACFloodRefused(b *testing.B) {
	m := newMACTable(10*time.Minute, time.Second, 16384, 4096)
	for i := range 4096 {
		m.learn(key(1, i), 1, 0)
	}
	var pend []macPending
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		m.observe(key(2, i), 1, 1, &pend)
		if len(pend) == 32 {
			m.insert(pend)
			pend = pend[:0]
		}
	}
}

// BenchmarkMACLookup looks up and refreshes a known MAC.
func BenchmarkMACLookup(b *testing.B) {
	m := newMACTable(10*time.Minute, time.Second, 100000, 100000)
	for i := range 1000 {
		m.learn(key(0, i), 1, 0)
	}
	k := key(0, 263)
	var pend []macPending
	b.ReportAllocs()
	for b.Loop() {
		m.lookup(k)
		m.observe(k, 1, 0, &pend)
	}
}

// BenchmarkMACLookupParallel looks up and refreshes known MACs from every
// CPU at once, as the TAP and UDP readers do.
func BenchmarkMACLookupParallel(b *testing.B) {
	m := newMACTable(10*time.Minute, time.Second, 100000, 100000)
	for i := range 1000 {
		m.learn(key(0, i), 1, 0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var pend []macPending
		i := 0
		for pb.Next() {
			i++
			k := key(0, i%1000)
			m.lookup(k)
			m.observe(k, 1, 0, &pend)
		}
	})
}
