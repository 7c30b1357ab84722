package daemon

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/weftnet/weft/router"
	"github.com/weftnet/weft/router/fastdp"
)

// DefaultFastDPPort is the UDP port of the fast path's VXLAN device.
const DefaultFastDPPort = 6784

// Fast path device defaults: the device's name and its VXLAN network
// identifier (one for the whole weft network).
const (
	fastdpDevice = "weft-vxlan"
	fastdpVNI    = 0x77eef
)

// FastPathDevice is the fast path's VXLAN device on the weft bridge.
type FastPathDevice interface {
	fastdp.Kernel
	// Counters returns the frames and bytes the device received and sent.
	Counters() (framesIn, bytesIn, framesOut, bytesOut uint64, err error)
}

// FastPathConfig is what OpenFastPath needs.
type FastPathConfig struct {
	// Name is the device's name; Bridge and TAP the weft bridge and the
	// router's TAP on it.
	Name, Bridge, TAP string
	// Port is the UDP port; VNI the VXLAN network identifier; MTU the
	// weft network's.
	Port, VNI, MTU int
	// HeartbeatMAC is this router's heartbeat MAC (fastdp.HeartbeatMAC).
	HeartbeatMAC fastdp.MAC
}

// fastPath is the running fast path: its manager and device. It is the
// router's FastPath (the manager's methods) and FastPathCounter.
type fastPath struct {
	*fastdp.Manager
	dev  FastPathDevice
	port int
}

var _ router.FastPathCounter = (*fastPath)(nil)

// FastPathCounters implements router.FastPathCounter: the device's
// counters (none when the kernel does not answer) and the manager's.
func (f *fastPath) FastPathCounters() router.FastPathCounters {
	st := f.Stats()
	c := router.FastPathCounters{
		HeartbeatsSent: st.HeartbeatsSent, HeartbeatsReceived: st.HeartbeatsReceived,
		EntriesInstalled: st.Installs, EntriesRemoved: st.Removals,
	}
	if fin, bin, fout, bout, err := f.dev.Counters(); err == nil {
		c.FramesIn, c.BytesIn, c.FramesOut, c.BytesOut = fin, bin, fout, bout
	}
	return c
}

// openFastPath creates the VXLAN device and the manager and hands them to
// the router's config and the features announced to peers. Without the
// fast path (--no-fastdp, or a kernel that refuses the device) it returns
// nil and all traffic takes the userspace path.
func (d *Daemon) openFastPath(rcfg *router.Config, features map[string]string) *fastPath {
	if !d.cfg.FastDP || d.deps.OpenFastPath == nil {
		return nil
	}
	port := d.cfg.FastDPPort
	if port == 0 {
		port = DefaultFastDPPort
	}
	dev, err := d.deps.OpenFastPath(FastPathConfig{
		Name: fastdpDevice, Bridge: d.cfg.Bridge, TAP: d.cfg.TAPName,
		Port: port, VNI: fastdpVNI, MTU: d.mtu, HeartbeatMAC: fastdp.HeartbeatMAC(d.self),
	})
	if err != nil {
		d.log.Warn("no fast path: all traffic takes the userspace path", "err", err)
		return nil
	}
	mgr, err := fastdp.New(fastdp.Config{Self: d.self, Kernel: dev, FrameSize: 14 + d.mtu, Logger: d.log.With("part", "fastdp")})
	if err != nil {
		dev.Close()
		d.deps.Host.DeleteLink(fastdpDevice)
		d.log.Warn("no fast path: all traffic takes the userspace path", "err", fmt.Errorf("fast path: %w", err))
		return nil
	}
	f := &fastPath{Manager: mgr, dev: dev, port: port}
	rcfg.FastPath, rcfg.FastPathPort = f, port
	features[router.FeatureFastPathPort] = strconv.Itoa(port)
	d.log.Info("fast path ready", "device", fastdpDevice, "port", port)
	return f
}

// run runs the manager until ctx is done; the device goes when the
// daemon stops.
func (f *fastPath) run(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.Run(ctx)
	}()
}
