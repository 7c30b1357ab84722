package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/test/netns"
)

// firstPingScript pings the address in $1 until it answers, at most 10 s.
const firstPingScript = `i=0; until ping -c 1 -W 1 "$1" >/dev/null 2>&1; do i=$((i+1)); [ $i -ge 100 ] && exit 1; sleep 0.05; done`

// timedRun runs `docker run --rm ARGS... busybox sh -c firstPingScript
// - ADDR` and returns how long it took.
func timedRun(b *testing.B, d *netns.Dockerd, addr string, args ...string) time.Duration {
	b.Helper()
	argv := append(append([]string{"run", "--rm"}, args...), netns.BusyboxImage, "sh", "-c", firstPingScript, "-", addr)
	began := time.Now()
	r := d.Docker(argv...)
	took := time.Since(began)
	if !r.OK() {
		b.Fatalf("docker %s: %v", strings.Join(argv, " "), r)
	}
	return took
}

// containerAddr is the address of container name on network net.
func containerAddr(b *testing.B, d *netns.Dockerd, name, net string) string {
	b.Helper()
	out := strings.TrimSpace(d.MustDocker(b, "inspect", "-f", fmt.Sprintf("{{(index .NetworkSettings.Networks %q).IPAddress}}", net), name))
	if out == "" {
		b.Fatalf("%s has no address on %s", name, net)
	}
	return out
}

// BenchmarkDockerRunFirstPing measures, with a real dockerd on each of
// two hosts, the time from `docker run` to the container's first answered
// ping: on a weft network through the plugin, to a container on the
// other host, and on Docker's own bridge network, to a container on the
// same bridge. The goal: weft within 0.3 s of the bridge.
// Reported per run: weft-s, bridge-s and their difference.
func BenchmarkDockerRunFirstPing(b *testing.B) {
	_, _, d1, d2 := dockerPair(b)
	for _, d := range []*netns.Dockerd{d1, d2} {
		d.MustDocker(b, "network", "create", "-d", "weft", "--ipam-driver", "weft", "--subnet", "10.61.0.0/24", "wb")
	}
	d2.MustDocker(b, "network", "create", "-d", "bridge", "--subnet", "10.62.0.0/24", "br")
	d1.MustDocker(b, "run", "-d", "--network", "wb", "--name", "far", netns.BusyboxImage, "sleep", "3600")
	d2.MustDocker(b, "run", "-d", "--network", "br", "--name", "near", netns.BusyboxImage, "sleep", "3600")
	far, near := containerAddr(b, d1, "far", "wb"), containerAddr(b, d2, "near", "br")
	// One unmeasured run of each: the first container start on a fresh
	// dockerd pays for things later ones do not.
	timedRun(b, d2, far, "--network", "wb")
	timedRun(b, d2, near, "--network", "br")

	var weft, bridge time.Duration
	b.ResetTimer()
	for range b.N {
		weft += timedRun(b, d2, far, "--network", "wb")
		bridge += timedRun(b, d2, near, "--network", "br")
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(weft.Seconds()/n, "weft-s")
	b.ReportMetric(bridge.Seconds()/n, "bridge-s")
	b.ReportMetric((weft-bridge).Seconds()/n, "extra-s")
	b.ReportMetric(0, "ns/op")
}
