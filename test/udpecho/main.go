// Command udpecho measures the round-trip floor of any userspace data path
// on this machine: a UDP echo between two Go processes, where each round
// trip wakes two sleeping processes (the echo server, then the client), as
// an overlay router wakes for every packet it forwards.
//
//	udpecho -serve 10.98.0.2:7001 -duration 60s
//	udpecho -probe 10.98.0.2:7001 -count 50 -interval 10ms
//
// The probe sends count datagrams, interval apart, each waiting for its
// echo (1 s at most), and prints one line:
//
//	rtt_avg_ms=0.187 rtt_p50_ms=0.180 rtt_min_ms=0.052 answered=50
//
// Both modes stop by themselves: the server after -duration, the probe
// after its count. test/bench.sh runs it between its two hosts.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"time"
)

func main() {
	serve := flag.String("serve", "", "echo datagrams received on this address")
	probe := flag.String("probe", "", "measure round trips to the echo server at this address")
	duration := flag.Duration("duration", time.Minute, "how long the server runs")
	count := flag.Int("count", 50, "round trips to measure")
	interval := flag.Duration("interval", 10*time.Millisecond, "pause between round trips")
	flag.Parse()
	var err error
	switch {
	case *serve != "" && *probe == "":
		err = runServer(*serve, *duration)
	case *probe != "" && *serve == "":
		err = runProbe(*probe, *count, *interval)
	default:
		err = errors.New("give exactly one of -serve ADDR and -probe ADDR")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "udpecho:", err)
		os.Exit(1)
	}
}

// runServer echoes every datagram back to its sender until d has passed.
func runServer(addr string, d time.Duration) error {
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(d)); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		if _, err := c.WriteTo(buf[:n], from); err != nil {
			return fmt.Errorf("serve: echo to %s: %w", from, err)
		}
	}
}

// runProbe measures count round trips and prints their statistics.
func runProbe(addr string, count int, interval time.Duration) error {
	if count < 1 {
		return fmt.Errorf("probe: -count %d: want at least 1", count)
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer c.Close()
	out, in := make([]byte, 64), make([]byte, 2048)
	var rtts []time.Duration
	for i := range count {
		out[0], out[1] = byte(i>>8), byte(i)
		start := time.Now()
		if _, err := c.Write(out); err != nil {
			return fmt.Errorf("probe: send: %w", err)
		}
		if err := c.SetReadDeadline(start.Add(time.Second)); err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		for {
			n, err := c.Read(in)
			if err != nil {
				break // lost: not counted
			}
			if n == len(out) && in[0] == out[0] && in[1] == out[1] {
				rtts = append(rtts, time.Since(start))
				break
			}
		}
		time.Sleep(interval)
	}
	if len(rtts) == 0 {
		return fmt.Errorf("probe: no echo from %s", addr)
	}
	var sum time.Duration
	for _, r := range rtts {
		sum += r
	}
	slices.Sort(rtts)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	fmt.Printf("rtt_avg_ms=%.3f rtt_p50_ms=%.3f rtt_min_ms=%.3f answered=%d\n",
		ms(sum/time.Duration(len(rtts))), ms(rtts[len(rtts)/2]), ms(rtts[0]), len(rtts))
	return nil
}
