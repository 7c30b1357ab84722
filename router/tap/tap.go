// Package tap is the host side of weft's virtual switch: a Linux TAP
// device (Ethernet frames, no packet information header) that implements
// router.Device with batched reads.
//
// One wakeup of the reader drains every frame the kernel has queued, up to
// the caller's batch size, with non-blocking read(2) calls inside the Go
// poller's RawConn callback; writes go out one write(2) per frame (the TAP
// has no batched write) and wait for writability on EAGAIN.
//
// Goroutines: the package starts none. Read is called by one reader
// goroutine at a time and Write by one writer at a time (the router's);
// a Read and a Write may run concurrently because each has its own state.
// Close may be called from any goroutine and unblocks both. A multi-queue
// TAP (OpenOffloadQueues) is one Device per queue, each with its own
// state, so each queue can have its own reader and writer goroutines.
package tap

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/router"
)

var _ router.Device = (*Device)(nil)

// Device is an open TAP device. Create it with Open.
type Device struct {
	file *os.File
	raw  syscall.RawConn
	name string
	mtu  int
	// vnet is set when frames carry a virtio-net header (OpenOffload).
	vnet bool
	// tso is set when the kernel may hand reads TCP super-frames.
	tso bool
	// queues is how many queues the TAP was opened with (OpenOffloadQueues);
	// 1 for Open and OpenOffload.
	queues int
	// closed is set by Close, so that Read and Write can report
	// os.ErrClosed (the poller's "use of closed file" does not wrap it).
	closed atomic.Bool

	// Read state, owned by the one Read caller. readFn is bound once so
	// that passing it to RawConn.Read does not allocate.
	rbufs  [][]byte
	rsizes []int
	roff   int
	rn     int
	rerr   error
	readFn func(fd uintptr) bool

	// Write state, owned by the one Write caller.
	wbufs   [][]byte
	woff    int
	wn      int
	werr    error
	writeFn func(fd uintptr) bool
}

// Open creates the TAP device name in the calling thread's network
// namespace (or opens it if a persistent one exists), sets its MTU and
// transmit queue length (TxQueueLen) and returns it. The interface is left down and detached; bringing it up and
// onto the bridge is netdev's job.
func Open(name string, mtu int) (*Device, error) {
	f, err := openTAP(name)
	if err != nil {
		return nil, fmt.Errorf("open tap %s: %w", name, err)
	}
	return setup(f, name, mtu, false)
}

// OpenOffload is Open for a TAP whose frames carry a virtio-net header
// (the device implements router.Offloader). With tso the kernel may hand
// it TCP super-frames of up to 64 KB and partially checksummed frames;
// without, only plain frames (with all-zero headers) are read.
func OpenOffload(name string, mtu int, tso bool) (*Device, error) {
	f, err := openVnetTAP(name, tso, false)
	if err != nil {
		return nil, fmt.Errorf("open tap %s: %w", name, err)
	}
	d, err := setup(f, name, mtu, true)
	if err != nil {
		return nil, err
	}
	d.tso = tso
	return d, nil
}

// setup configures the interface of a single-queue TAP and wraps f.
func setup(f *os.File, name string, mtu int, vnet bool) (*Device, error) {
	if err := configure(name, mtu); err != nil {
		f.Close()
		return nil, fmt.Errorf("open tap %s: %w", name, err)
	}
	return newDevice(f, name, mtu, vnet)
}

// configure sets the interface's MTU and transmit queue length; a
// multi-queue TAP needs it once, whatever its number of queues.
func configure(name string, mtu int) error {
	if err := setMTU(name, mtu); err != nil {
		return err
	}
	return setTxQueueLen(name, TxQueueLen)
}

// newDevice wraps one queue's descriptor, closing it on failure.
func newDevice(f *os.File, name string, mtu int, vnet bool) (*Device, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open tap %s: %w", name, err)
	}
	// Reads and writes never wait in the kernel (rawRead): the poller
	// waits for them.
	var nbErr error
	if err := raw.Control(func(fd uintptr) { nbErr = unix.SetNonblock(int(fd), true) }); err != nil || nbErr != nil {
		f.Close()
		return nil, fmt.Errorf("open tap %s: set non-blocking: %w", name, errors.Join(err, nbErr))
	}
	d := &Device{file: f, raw: raw, name: name, mtu: mtu, vnet: vnet, queues: 1}
	d.readFn = d.readFrames
	d.writeFn = d.writeFrames
	return d, nil
}

// Name is the interface name.
func (d *Device) Name() string { return d.name }

// VnetHdr implements router.Offloader: frames carry a virtio-net header
// in the router.VnetHdrLen bytes before them.
func (d *Device) VnetHdr() bool { return d.vnet }

// Offloads reports the device's offloads: "tap_vnet_hdr" (frames carry a
// virtio-net header), "tap_tso" (reads may bring TCP super-frames) and
// "tap_multi_queue" (the device is one of several queues of its TAP).
func (d *Device) Offloads() map[string]bool {
	return map[string]bool{"tap_vnet_hdr": d.vnet, "tap_tso": d.tso, "tap_multi_queue": d.queues > 1}
}

// MTU is the largest IP packet the device carries, as given to Open.
func (d *Device) MTU() int { return d.mtu }

// Close closes the device; blocked Read and Write calls return an error
// that wraps os.ErrClosed. A non-persistent TAP disappears with its last
// file descriptor: closing one queue of a multi-queue TAP leaves the
// others working.
func (d *Device) Close() error {
	d.closed.Store(true)
	if err := d.file.Close(); err != nil {
		return fmt.Errorf("close tap %s: %w", d.name, err)
	}
	return nil
}

// Read blocks until at least one frame is queued, then reads up to
// len(bufs) frames, frame i into bufs[i][offset:] with its length in
// sizes[i], and returns how many. A frame longer than the space after
// offset is truncated by the kernel, so buffers should hold offset plus
// MTU plus the 14-byte Ethernet header.
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(sizes) < len(bufs) {
		bufs = bufs[:len(sizes)]
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	if d.vnet {
		if offset < router.VnetHdrLen {
			return 0, fmt.Errorf("read tap %s: offset %d leaves no room for the virtio-net header", d.name, offset)
		}
		offset -= router.VnetHdrLen
	}
	d.rbufs, d.rsizes, d.roff, d.rn, d.rerr = bufs, sizes, offset, 0, nil
	err := d.raw.Read(d.readFn)
	n := d.rn
	if d.vnet {
		for i := range n {
			d.rsizes[i] = max(d.rsizes[i]-router.VnetHdrLen, 0)
		}
	}
	if err == nil {
		err = d.rerr
	}
	d.rbufs, d.rsizes = nil, nil
	if n > 0 {
		// Frames already read are delivered; a persistent error shows
		// again on the next call.
		return n, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read tap %s: %w", d.name, d.closedErr(err))
	}
	return 0, nil
}

// closedErr is os.ErrClosed in place of err once Close was called.
func (d *Device) closedErr(err error) error {
	if d.closed.Load() {
		return os.ErrClosed
	}
	return err
}

// readFrames is the RawConn.Read callback: it drains queued frames and
// asks the poller to wait only when it found none.
func (d *Device) readFrames(fd uintptr) bool {
	for d.rn < len(d.rbufs) {
		n, err := rawRead(fd, d.rbufs[d.rn][d.roff:])
		switch err {
		case nil:
			d.rsizes[d.rn] = n
			d.rn++
		case unix.EINTR:
		case unix.EAGAIN:
			return d.rn > 0
		default:
			d.rerr = err
			return true
		}
	}
	return true
}

// Write writes each bufs[i][offset:] as one frame and returns how many
// were written. It stops at the first frame the kernel refuses (for
// instance one shorter than an Ethernet header) and returns the count
// written before it with the error.
func (d *Device) Write(bufs [][]byte, offset int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	if d.vnet {
		if offset < router.VnetHdrLen {
			return 0, fmt.Errorf("write tap %s: offset %d leaves no room for the virtio-net header", d.name, offset)
		}
		offset -= router.VnetHdrLen
	}
	d.wbufs, d.woff, d.wn, d.werr = bufs, offset, 0, nil
	err := d.raw.Write(d.writeFn)
	n := d.wn
	if err == nil {
		err = d.werr
	}
	d.wbufs = nil
	if err != nil {
		return n, fmt.Errorf("write tap %s: %w", d.name, d.closedErr(err))
	}
	return n, nil
}

// writeFrames is the RawConn.Write callback; it resumes at d.wn after the
// poller reports the device writable again.
func (d *Device) writeFrames(fd uintptr) bool {
	for d.wn < len(d.wbufs) {
		_, err := rawWrite(fd, d.wbufs[d.wn][d.woff:])
		switch err {
		case nil:
			d.wn++
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			d.werr = err
			return true
		}
	}
	return true
}

// rawRead is read(2) without telling the Go scheduler: the descriptor is
// non-blocking (newDevice), so the call never sleeps, and the scheduler
// need not get ready to hand this goroutine's processor to another thread
// meanwhile. On a router that makes a system call per frame batch, that
// bookkeeping (and the monitor thread it wakes) cost a fifth of the CPU.
func rawRead(fd uintptr, b []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// rawWrite is write(2) like rawRead.
func rawWrite(fd uintptr, b []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
