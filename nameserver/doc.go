// Package nameserver is weft's embedded DNS: a gossiped store of name
// records, a DNS handler that answers for the weft domain from that store
// and forwards everything else upstream, a server that runs the handler on
// UDP and TCP sockets, and a writer of resolv.conf files for network
// namespaces.
//
// The store ([Store]) and the handler ([Handler]) are pure: they take a clock,
// a logger and an upstream [Exchanger] as values and start no goroutines.
// Store methods and ServeDNS may be called from any goroutine. The only
// goroutines are those of [Server]: it owns one serving goroutine per socket
// (and miekg/dns starts one per TCP connection); Start launches them and Stop
// (or cancelling Start's context) ends them and waits.
//
// The store plugs into mesh gossip through thin adapters: a [RecordSet] is the
// gossip data (Encode, Merge), [Store.Gossip] is the complete state,
// [Store.Merge] applies received data and returns the delta to relay plus the
// records of our own that must be re-broadcast. See docs/dns.md.
package nameserver
