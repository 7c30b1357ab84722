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

// fastPath is the running fast path: its manager and device.
type fastPath struct {
	mgr  *fastdp.Manager
	dev  FastPathDevice
	port int
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
	rcfg.FastPath, rcfg.FastPathPort = mgr, port
	features[router.FeatureFastPathPort] = strconv.Itoa(port)
	d.log.Info("fast path ready", "device", fastdpDevice, "port", port)
	return &fastPath{mgr: mgr, dev: dev, port: port}
}

// run runs the manager until ctx is done; the device goes when the
// daemon stops.
func (f *fastPath) run(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.mgr.Run(ctx)
	}()
}

// counters are the fast path's counters for /metrics: the frames and
// bytes the kernel carried (the VXLAN device's) and the manager's work;
// none when the fast path is off.
func (f *fastPath) counters() map[string]uint64 {
	if f == nil {
		return nil
	}
	st := f.mgr.Stats()
	out := map[string]uint64{
		"fastdp_heartbeats_sent": st.HeartbeatsSent, "fastdp_heartbeats_received": st.HeartbeatsReceived,
		"fastdp_entries_installed": st.Installs, "fastdp_entries_removed": st.Removals,
	}
	if fin, bin, fout, bout, err := f.dev.Counters(); err == nil {
		out["fastdp_frames_in"], out["fastdp_bytes_in"] = fin, bin
		out["fastdp_frames_out"], out["fastdp_bytes_out"] = fout, bout
	}
	return out
}
