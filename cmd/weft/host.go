package main

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/weftnet/weft/daemon"
	"github.com/weftnet/weft/docker"
	"github.com/weftnet/weft/netdev"
	"github.com/weftnet/weft/plugin"
	"github.com/weftnet/weft/router"
	"github.com/weftnet/weft/router/tap"
	"github.com/weftnet/weft/router/udp"
)

// bridgeName is the Linux bridge weft makes on every host.
const bridgeName = "weft"

// realDeps builds the real devices, sockets and host glue.
// With WEFT_NO_OFFLOAD set (to anything but empty) the data path uses no
// kernel offload at all: one frame per TAP read and write, one datagram
// per UDP send and receive. It is the fallback a kernel without offloads
// gets, and a way to rule offloads out when chasing a problem.
func realDeps(dc *docker.Client) daemon.Deps {
	noOffload := os.Getenv("WEFT_NO_OFFLOAD") != ""
	deps := daemon.Deps{
		Host: netdevHost{docker: dc},
		OpenTAP: func(name string, mtu int) (router.Device, error) {
			// Frames with virtio-net headers and TCP segmentation
			// offload: a 64 KB TCP segment crosses as one frame.
			if !noOffload {
				if qs, err := tap.OpenOffloadQueues(name, mtu, true, queueCount()); err == nil {
					if len(qs) == 1 {
						return qs[0], nil
					}
					return tapQueues(qs), nil
				}
				if d, err := tap.OpenOffload(name, mtu, true); err == nil {
					return d, nil
				}
			}
			return tap.Open(name, mtu)
		},
		ListenUDP: func(addr netip.AddrPort) (router.Transport, error) {
			g, err := udp.ListenGroup(addr, udp.Options{NoGSO: noOffload, NoGRO: noOffload}, queueCount())
			if err != nil {
				return nil, err
			}
			if len(g) == 1 {
				return g[0], nil
			}
			return udpGroup(g), nil
		},
	}
	deps.OpenFastPath = func(c daemon.FastPathConfig) (daemon.FastPathDevice, error) {
		v, err := netdev.OpenVXLAN(netdev.VXLANConfig{Name: c.Name, Bridge: c.Bridge, TAP: c.TAP,
			Port: c.Port, VNI: c.VNI, MTU: c.MTU, HeartbeatMAC: c.HeartbeatMAC})
		if err != nil {
			return nil, err
		}
		return vxlanDevice{v}, nil
	}
	if dc != nil {
		deps.Docker = dockerEngine{dc}
	}
	return deps
}

// vxlanDevice is the fast path's device as the daemon wants it.
type vxlanDevice struct{ *netdev.VXLAN }

// Counters implements daemon.FastPathDevice.
func (v vxlanDevice) Counters() (framesIn, bytesIn, framesOut, bytesOut uint64, err error) {
	c, err := v.VXLAN.Counters()
	return c.RxPackets, c.RxBytes, c.TxPackets, c.TxBytes, err
}

// queueCount is how many queues the TAP gets and how many sockets share
// the UDP port, each with its reader, so that the router reads different
// flows (TAP) and different peers (UDP) on different cores: one per CPU
// up to 4, or WEFT_QUEUES.
func queueCount() int {
	if n, err := strconv.Atoi(os.Getenv("WEFT_QUEUES")); err == nil && n >= 1 {
		return min(n, 16)
	}
	return min(runtime.NumCPU(), 4)
}

// tapQueues is a multi-queue TAP as one router.Device: it reads and
// writes through queue 0, hands the router every queue to read
// (router.MultiQueue) and closes them all.
type tapQueues []*tap.Device

func (q tapQueues) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	return q[0].Read(bufs, sizes, offset)
}
func (q tapQueues) Write(bufs [][]byte, offset int) (int, error) { return q[0].Write(bufs, offset) }
func (q tapQueues) MTU() int                                     { return q[0].MTU() }
func (q tapQueues) VnetHdr() bool                                { return q[0].VnetHdr() }
func (q tapQueues) Offloads() map[string]bool                    { return q[0].Offloads() }

// ReadQueues implements router.MultiQueue.
func (q tapQueues) ReadQueues() []router.Device { return asInterfaces[router.Device](q) }

// Close closes every queue; the TAP goes with the last.
func (q tapQueues) Close() error { return closeAll(q) }

// udpGroup is a group of sockets on one port as one router.Transport: it
// sends through socket 0, hands the router every socket to read
// (router.MultiSocket) and closes them all.
type udpGroup []*udp.Conn

func (g udpGroup) ReadBatch(d []router.Datagram) (int, error)  { return g[0].ReadBatch(d) }
func (g udpGroup) WriteBatch(d []router.Datagram) (int, error) { return g[0].WriteBatch(d) }
func (g udpGroup) LocalPort() uint16                           { return g[0].LocalPort() }
func (g udpGroup) MaxSegments() int                            { return g[0].MaxSegments() }

// Offloads reports socket 0's offloads and "udp_reuseport".
func (g udpGroup) Offloads() map[string]bool {
	m := g[0].Offloads()
	m["udp_reuseport"] = true
	return m
}

// ReadSockets implements router.MultiSocket.
func (g udpGroup) ReadSockets() []router.Transport { return asInterfaces[router.Transport](g) }

// Close closes every socket.
func (g udpGroup) Close() error { return closeAll(g) }

// asInterfaces returns xs as a slice of the interface I that each
// implements.
func asInterfaces[I any, T any](xs []T) []I {
	out := make([]I, len(xs))
	for i, x := range xs {
		out[i] = any(x).(I)
	}
	return out
}

// closeAll closes every one of cs and joins their errors.
func closeAll[C io.Closer](cs []C) error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// resetHost removes the bridge and veths when no router runs.
func resetHost() error { return netdev.Reset(bridgeName) }

// netdevHost implements daemon.Host with package netdev. Container
// targets ("container:ID") are resolved to the PID of the container's
// init process through Docker at each call (nil docker: none resolve).
type netdevHost struct{ docker *docker.Client }

// target parses a canonical target and, for a container, finds its PID
// (0 when it is not running).
func (h netdevHost) target(s string) (netdev.Target, error) {
	t, err := netdev.ParseTarget(s)
	if err != nil || t.Kind != netdev.TargetContainer {
		return t, err
	}
	return h.resolve(t)
}

func (h netdevHost) resolve(t netdev.Target) (netdev.Target, error) {
	if h.docker == nil {
		return t, errors.New("this router runs without Docker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := h.docker.Inspect(ctx, t.ID)
	if err != nil {
		return t, err
	}
	t.PID = c.PID
	return t, nil
}

func (netdevHost) EnsureBridge(bridge string, mtu int) error { return netdev.EnsureBridge(bridge, mtu) }
func (netdevHost) AttachToBridge(ifname, bridge string, mtu int) error {
	return netdev.AttachToBridge(ifname, bridge, mtu)
}
func (netdevHost) DeleteLink(name string) error { return netdev.DeleteLink(name) }
func (netdevHost) ParseTarget(s string) (string, error) {
	t, err := netdev.ParseTarget(s)
	if err != nil {
		return "", err
	}
	return t.String(), nil
}
func (h netdevHost) Attach(bridge, target string, addrs []netip.Prefix, mtu int, opts daemon.AttachOptions) (daemon.Attachment, error) {
	t, err := h.target(target)
	if err != nil {
		return daemon.Attachment{}, err
	}
	a, err := netdev.Attach(bridge, t, addrs, mtu, netdev.AttachOptions{SourceCheck: opts.SourceCheck, Given: opts.Given})
	return convert(a), err
}
func (h netdevHost) Detach(bridge, target string, addrs []netip.Prefix) ([]netip.Prefix, error) {
	t, err := h.target(target)
	if errors.Is(err, docker.ErrNoSuchContainer) {
		return nil, goneError{err}
	}
	if err != nil {
		return nil, err
	}
	removed, err := netdev.Detach(bridge, t, addrs)
	if errors.Is(err, netdev.ErrNamespaceNotFound) || errors.Is(err, netdev.ErrNoSuchProcess) || errors.Is(err, netdev.ErrNotRunning) {
		err = goneError{err}
	}
	return removed, err
}
func (h netdevHost) AddRoute(target string, dst netip.Prefix) error {
	t, err := h.target(target)
	if err != nil {
		return err
	}
	return netdev.AddRoute(t, dst)
}
func (h netdevHost) MarkReady(target string) error {
	t, err := h.target(target)
	if err != nil {
		return err
	}
	return netdev.MarkReady(t)
}
func (netdevHost) RouteRepliesFrom(bridge string, src netip.Addr) error {
	return netdev.RouteRepliesFrom(bridge, src)
}

// TargetExists reports a container as gone when Docker says it does not
// exist or is not running; when Docker does not answer, it is kept.
func (h netdevHost) TargetExists(target string) bool {
	t, err := h.target(target)
	if err != nil {
		return !errors.Is(err, docker.ErrNoSuchContainer) && !errors.Is(err, netdev.ErrBadTarget)
	}
	return netdev.TargetExists(t)
}
func (h netdevHost) List(bridge string) ([]daemon.Attachment, error) {
	list, err := netdev.List(bridge, h.resolve)
	out := make([]daemon.Attachment, 0, len(list))
	for _, a := range list {
		out = append(out, convert(a))
	}
	return out, err
}
func (netdevHost) Expose(bridge string, addrs []netip.Prefix) error {
	return netdev.Expose(bridge, addrs)
}
func (netdevHost) Hide(bridge string, addrs []netip.Prefix) ([]netip.Prefix, error) {
	return netdev.Hide(bridge, addrs)
}
func (netdevHost) Exposed(bridge string) ([]netip.Prefix, error) { return netdev.Exposed(bridge) }
func (netdevHost) Reset(bridge string) error                     { return netdev.Reset(bridge) }
func (netdevHost) UnderlayMTU(dst netip.Addr) (int, error)       { return netdev.UnderlayMTU(dst) }
func (netdevHost) CreateEndpointLink(bridge string, l plugin.Link) (string, error) {
	return netdev.CreateEndpoint(bridge, netdev.Endpoint{ID: l.EndpointID, MAC: l.MAC, Segment: l.Segment, MTU: l.MTU})
}
func (netdevHost) DeleteEndpointLink(id string) error { return netdev.DeleteEndpoint(id) }
func (netdevHost) EndpointLinks() ([]string, error)   { return netdev.Endpoints() }

func convert(a netdev.Attachment) daemon.Attachment {
	return daemon.Attachment{Target: a.Target, MAC: a.MAC, Addrs: a.Addrs, Err: a.Err}
}

// goneError keeps netdev's message for a target whose namespace is gone and
// tells the daemon so (errors.Is(err, daemon.ErrTargetGone)).
type goneError struct{ err error }

func (e goneError) Error() string   { return e.err.Error() }
func (e goneError) Unwrap() []error { return []error{daemon.ErrTargetGone, e.err} }
