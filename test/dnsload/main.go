// Command dnsload measures a DNS server: for a fixed time it keeps a number
// of queries for one name in flight, each worker on its own UDP socket
// waiting for the answer before it sends the next, and prints queries per
// second and latency percentiles on one line:
//
//	server=169.254.53.53:53 name=bench.weft.local. qps=41234 p50_us=350 p99_us=1200 answered=412340 timeouts=0 errors=0
//
// A reply counts as answered when its id matches and its rcode is the one
// expected (NOERROR by default). The run is bounded by -duration. It is used
// by test/bench-dns.sh; each worker goroutine owns its socket and its
// latency samples, and main collects them when the workers end.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
)

type result struct {
	lat                      []time.Duration
	answered, timeouts, errs int
}

func main() {
	server := flag.String("server", "169.254.53.53:53", "DNS server ADDR:PORT")
	name := flag.String("name", "bench.weft.local.", "name to query (A)")
	duration := flag.Duration("duration", 5*time.Second, "how long to send queries (at most 5m)")
	workers := flag.Int("c", 8, "queries in flight (one socket each)")
	timeout := flag.Duration("timeout", time.Second, "how long to wait for one answer")
	flag.Parse()
	if *duration <= 0 || *duration > 5*time.Minute || *workers < 1 || *workers > 1024 {
		fmt.Fprintln(os.Stderr, "dnsload: -duration must be in (0, 5m], -c in [1, 1024]")
		os.Exit(1)
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(*name), dns.TypeA)
	query, err := m.Pack()
	if err != nil {
		fmt.Fprintf(os.Stderr, "dnsload: %v\n", err)
		os.Exit(1)
	}
	results := make([]result, *workers)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(*duration)
	for i := range results {
		conn, err := net.Dial("udp", *server)
		if err != nil {
			fmt.Fprintf(os.Stderr, "dnsload: %v\n", err)
			os.Exit(1)
		}
		wg.Add(1)
		go func(r *result, id uint16) {
			defer wg.Done()
			defer conn.Close()
			run(conn, r, slices.Clone(query), id, deadline, *timeout)
		}(&results[i], uint16(i*4099))
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	var total result
	for _, r := range results {
		all = append(all, r.lat...)
		total.answered += r.answered
		total.timeouts += r.timeouts
		total.errs += r.errs
	}
	slices.Sort(all)
	pct := func(p float64) int64 {
		if len(all) == 0 {
			return 0
		}
		return all[int(float64(len(all)-1)*p)].Microseconds()
	}
	fmt.Printf("server=%s name=%s qps=%.0f p50_us=%d p99_us=%d answered=%d timeouts=%d errors=%d\n",
		*server, dns.Fqdn(*name), float64(total.answered)/elapsed.Seconds(), pct(0.5), pct(0.99),
		total.answered, total.timeouts, total.errs)
}

// run sends query (its id bumped each time) and waits for the answer until
// deadline.
func run(conn net.Conn, r *result, query []byte, id uint16, deadline time.Time, timeout time.Duration) {
	buf := make([]byte, 1500)
	for time.Now().Before(deadline) {
		id++
		query[0], query[1] = byte(id>>8), byte(id)
		sent := time.Now()
		if _, err := conn.Write(query); err != nil {
			r.errs++
			continue
		}
		conn.SetReadDeadline(sent.Add(timeout))
		for {
			n, err := conn.Read(buf)
			if err != nil {
				r.timeouts++
				break
			}
			if n < 12 || buf[0] != byte(id>>8) || buf[1] != byte(id) {
				continue // a late answer to an earlier query
			}
			if buf[3]&0x0f != dns.RcodeSuccess || buf[6]|buf[7] == 0 {
				r.errs++
			} else {
				r.answered++
				r.lat = append(r.lat, time.Since(sent))
			}
			break
		}
	}
}
