// Package routertest is an in-memory harness for the router: a fake TAP
// Device fed and drained through channels, an in-memory UDP Network of
// Transports with per-link loss, MTU limits and blocking, and helpers that
// start routers, connect them and install hand-built routes, so that
// several routers run together in tests without root.
//
// Goroutines: the fakes start none; the Node helpers start one goroutine
// per router (Run) and stop it on test cleanup.
package routertest
