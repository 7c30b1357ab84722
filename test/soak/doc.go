// Package soak holds the soak test (soak_test.go, build tag "soak"):
// three routers in network namespaces for a long time under mixed
// traffic, random router restarts and link cuts. Run it with `make soak`
// (SOAK=30m by default); it is not part of `make test`.
package soak
