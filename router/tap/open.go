package tap

import (
	"fmt"
	"os"

	"github.com/songgao/water"
	"golang.org/x/sys/unix"
)

// openTAP is the one place where the TAP file descriptor is created and
// configured: a non-blocking /dev/net/tun descriptor with IFF_TAP and
// IFF_NO_PI, registered with the Go poller by os.NewFile.
//
// Seam for offloads: enabling IFF_VNET_HDR (and then TUNSETVNETHDRSZ and
// TUNSETOFFLOAD with TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6) means issuing
// TUNSETIFF here ourselves instead of through water, since water does not
// pass that flag. Read and Write would then see a virtio_net_hdr in front
// of each frame, which fits in the headroom the router leaves at offset.
func openTAP(name string) (*os.File, error) {
	ifce, err := water.New(water.Config{
		DeviceType:             water.TAP,
		PlatformSpecificParams: water.PlatformSpecificParams{Name: name},
	})
	if err != nil {
		return nil, err
	}
	f, ok := ifce.ReadWriteCloser.(*os.File)
	if !ok {
		ifce.Close()
		return nil, fmt.Errorf("unexpected tap handle %T", ifce.ReadWriteCloser)
	}
	if got := ifce.Name(); got != name {
		f.Close()
		return nil, fmt.Errorf("kernel named the device %q", got)
	}
	return f, nil
}

// TxQueueLen is the length of the queue in front of the TAP's reader.
// The bridge hands the TAP bursts of dozens of frames at once (one TCP
// segment of 64 KB from a container becomes ~45 frames); with the kernel's
// default of 1000 shared by all flows, a burst arriving while the router
// is busy overflows it and TCP backs off. A deeper queue absorbs bursts.
const TxQueueLen = 10000

// setTxQueueLen sets the interface's transmit queue length with
// SIOCSIFTXQLEN, like setMTU.
func setTxQueueLen(name string, qlen int) error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("set txqueuelen %d: %w", qlen, err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("set txqueuelen %d: %w", qlen, err)
	}
	ifr.SetUint32(uint32(qlen))
	if err := unix.IoctlIfreq(s, unix.SIOCSIFTXQLEN, ifr); err != nil {
		return fmt.Errorf("set txqueuelen %d: %w", qlen, err)
	}
	return nil
}

// openVnetTAP creates the TAP with IFF_VNET_HDR, which water cannot ask
// for: every frame then carries a virtio_net_hdr. With tso, TUNSETOFFLOAD
// also lets the kernel hand the TAP partially checksummed frames and TCP
// segmentation offload super-frames of up to 64 KB, so that one read
// brings what would otherwise be dozens of frames. Writes of such frames
// are accepted whatever the offload setting.
//
// With multiQueue it asks for IFF_MULTI_QUEUE: the first call creates the
// device and each further call with the same name attaches one more queue
// (a descriptor of its own) to it. The kernel keeps flags and offloads per
// device but wants TUNSETOFFLOAD on an attached descriptor, so each queue
// repeats it.
func openVnetTAP(name string, tso, multiQueue bool) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	var flags uint16 = unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR
	if multiQueue {
		flags |= unix.IFF_MULTI_QUEUE
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		if multiQueue {
			return nil, fmt.Errorf("create tap with virtio-net header: %w: %w", ErrMultiQueue, err)
		}
		return nil, fmt.Errorf("create tap with virtio-net header: %w", err)
	}
	if got := ifr.Name(); got != name {
		unix.Close(fd)
		return nil, fmt.Errorf("kernel named the device %q", got)
	}
	offloads := 0
	if tso {
		offloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, offloads); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("set tap offloads: %w", err)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun"), nil
}

// setMTU sets the interface MTU with SIOCSIFMTU on a throwaway socket in
// the calling thread's network namespace.
func setMTU(name string, mtu int) error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("set mtu %d: %w", mtu, err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("set mtu %d: %w", mtu, err)
	}
	ifr.SetUint32(uint32(mtu))
	if err := unix.IoctlIfreq(s, unix.SIOCSIFMTU, ifr); err != nil {
		return fmt.Errorf("set mtu %d: %w", mtu, err)
	}
	return nil
}
