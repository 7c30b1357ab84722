package integration

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/test/netns"
)

// timedDocker runs docker with args, through the Docker API at host
// (the proxy) or straight to d when host is "", and returns how long it
// took; it fails the benchmark unless docker exits 0.
func timedDocker(b *testing.B, d *netns.Dockerd, host string, args ...string) time.Duration {
	b.Helper()
	began := time.Now()
	var r netns.Result
	if host == "" {
		r = d.Docker(args...)
	} else {
		r = d.DockerVia(host, args...)
	}
	took := time.Since(began)
	if !r.OK() {
		b.Fatalf("docker %s (through %q): %v", strings.Join(args, " "), host, r)
	}
	return took
}

// weftAddr is the IPv4 address of container name's ethweft.
func weftAddr(b *testing.B, d *netns.Dockerd, name string) string {
	b.Helper()
	out := d.MustDocker(b, "exec", name, "ip", "-4", "-o", "addr", "show", "dev", "ethweft")
	// "N: ethweft    inet ADDR/BITS brd ... scope global ethweft"
	f := strings.Fields(out)
	if len(f) < 4 || f[2] != "inet" {
		b.Fatalf("%s: ethweft has no IPv4 address: %q", name, out)
	}
	addr, _, _ := strings.Cut(f[3], "/")
	return addr
}

// BenchmarkProxyRunFirstPing measures, with a real dockerd on each of two
// hosts and each router serving its Docker API proxy, the time from
// `docker run` to the container's first answered ping: through the proxy
// (no WEFT_CIDR: an address from the default subnet, the command held
// until ethweft is up), to a container on the other host, and straight
// to Docker on its own bridge network, to a container on the same
// bridge. The goal: the proxy within 0.3 s of the bridge.
//
// The test dockerds have no docker0 (--bridge none), so a plain `docker
// run` gets no Docker network; on a host with docker0 it gets Docker's
// bridge and, through the proxy, weft as well. The proxied run is
// therefore measured both ways: with --network on the same bridge
// network as the baseline (as a default run on a real host) and with
// no Docker network (weft alone).
//
// Reported per run: proxy-s (with the bridge), bridge-s, extra-s (their
// difference) and weft-only-s.
func BenchmarkProxyRunFirstPing(b *testing.B) {
	_, _, d1, d2 := dockerPair(b)
	p1, p2 := weftEnv(b, d1), weftEnv(b, d2)
	timedDocker(b, d1, p1, "run", "-d", "--name", "far", netns.BusyboxImage, "sleep", "3600")
	d2.MustDocker(b, "network", "create", "-d", "bridge", "--subnet", "10.62.0.0/24", "br")
	d2.MustDocker(b, "run", "-d", "--network", "br", "--name", "near", netns.BusyboxImage, "sleep", "3600")
	far, near := weftAddr(b, d1, "far"), containerAddr(b, d2, "near", "br")
	run := func(host, addr string, args ...string) time.Duration {
		argv := append(append([]string{"run", "--rm"}, args...), netns.BusyboxImage, "sh", "-c", firstPingScript, "-", addr)
		return timedDocker(b, d2, host, argv...)
	}
	// One unmeasured run of each: the first container start on a fresh
	// dockerd pays for things later ones do not.
	run(p2, far)
	run(p2, far, "--network", "br")
	run("", near, "--network", "br")

	var proxy, bridge, weftOnly time.Duration
	b.ResetTimer()
	for range b.N {
		proxy += run(p2, far, "--network", "br")
		bridge += run("", near, "--network", "br")
		weftOnly += run(p2, far)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(proxy.Seconds()/n, "proxy-s")
	b.ReportMetric(bridge.Seconds()/n, "bridge-s")
	b.ReportMetric((proxy-bridge).Seconds()/n, "extra-s")
	b.ReportMetric(weftOnly.Seconds()/n, "weft-only-s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkProxyOverhead measures what the router's Docker API proxy adds
// to Docker commands that do not start containers, each run through the
// proxy and straight to Docker, alternately (which goes first alternates
// too), so that drift on the machine falls on both alike. The issue's
// goal: under 5 % more time through the proxy.
//
//   - ps: `docker ps` 100 times each way per run, with five containers
//     made through the proxy running (whose listing the proxy rewrites).
//   - cp: `docker cp` of a 100 MB file into a container and back out
//     each way per run; the container is started straight through
//     Docker, with --network none.
//
// Reported: the seconds each way (per `docker ps`; per cp in and per cp
// out) and the overhead in percent (for cp: in, out, and both together).
func BenchmarkProxyOverhead(b *testing.B) {
	w := netns.NewWorld(b, 1)
	d := w.Hosts[0].StartDockerd(b)
	d.Launch(b)
	p := weftEnv(b, d)
	for _, name := range []string{"l1", "l2", "l3", "l4", "l5"} {
		timedDocker(b, d, p, "run", "-d", "--name", name, netns.BusyboxImage, "sleep", "3600")
	}
	d.MustDocker(b, "run", "-d", "--network", "none", "--name", "box", netns.BusyboxImage, "sleep", "3600")

	b.Run("ps", func(b *testing.B) {
		const calls = 100
		timedDocker(b, d, p, "ps")
		timedDocker(b, d, "", "ps")
		var through, straight time.Duration
		b.ResetTimer()
		for range b.N {
			for i := range calls {
				hosts := [2]string{p, ""}
				if i%2 == 1 {
					hosts = [2]string{"", p}
				}
				for _, host := range hosts {
					took := timedDocker(b, d, host, "ps")
					if host == "" {
						straight += took
					} else {
						through += took
					}
				}
			}
		}
		b.StopTimer()
		n := float64(b.N * calls)
		b.ReportMetric(through.Seconds()/n, "through-s")
		b.ReportMetric(straight.Seconds()/n, "straight-s")
		b.ReportMetric(100*(through.Seconds()/straight.Seconds()-1), "ps-overhead-%")
		b.ReportMetric(0, "ns/op")
	})

	b.Run("cp", func(b *testing.B) {
		const size = 100 << 20
		dir := b.TempDir()
		in, back := filepath.Join(dir, "in"), filepath.Join(dir, "back")
		data := make([]byte, size)
		rand.Read(data)
		if err := os.WriteFile(in, data, 0o600); err != nil {
			b.Fatal(err)
		}
		// cp copies the file in, then out, and checks what came back.
		cp := func(host string) (tookIn, tookOut time.Duration) {
			tookIn = timedDocker(b, d, host, "cp", in, "box:/tmp/f")
			if err := os.Remove(back); err != nil && !os.IsNotExist(err) {
				b.Fatal(err)
			}
			tookOut = timedDocker(b, d, host, "cp", "box:/tmp/f", back)
			if fi, err := os.Stat(back); err != nil || fi.Size() != size {
				b.Fatalf("docker cp through %q: %v, %v bytes came back, want %d", host, err, fi, size)
			}
			return tookIn, tookOut
		}
		cp(p)
		cp("")
		var inThrough, outThrough, inStraight, outStraight time.Duration
		b.ResetTimer()
		for i := range b.N {
			hosts := [2]string{p, ""}
			if i%2 == 1 {
				hosts = [2]string{"", p}
			}
			for _, host := range hosts {
				tin, tout := cp(host)
				if host == "" {
					inStraight, outStraight = inStraight+tin, outStraight+tout
				} else {
					inThrough, outThrough = inThrough+tin, outThrough+tout
				}
			}
		}
		b.StopTimer()
		n := float64(b.N)
		b.ReportMetric(inThrough.Seconds()/n, "in-through-s")
		b.ReportMetric(inStraight.Seconds()/n, "in-straight-s")
		b.ReportMetric(outThrough.Seconds()/n, "out-through-s")
		b.ReportMetric(outStraight.Seconds()/n, "out-straight-s")
		b.ReportMetric(100*(inThrough.Seconds()/inStraight.Seconds()-1), "in-overhead-%")
		b.ReportMetric(100*(outThrough.Seconds()/outStraight.Seconds()-1), "out-overhead-%")
		b.ReportMetric(100*((inThrough+outThrough).Seconds()/(inStraight+outStraight).Seconds()-1), "cp-overhead-%")
		b.ReportMetric(0, "ns/op")
	})
}
