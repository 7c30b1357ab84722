package routertest

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// ErrClosed is returned by the fakes after Close; it wraps net.ErrClosed
// as real sockets do.
var ErrClosed = fmt.Errorf("routertest: %w", net.ErrClosed)

// Device is a fake TAP device. Frames given to Inject are returned by
// Read; frames the router writes appear on Delivered. It implements
// router.Device.
type Device struct {
	mtu       int
	in        chan []byte
	out       chan []byte
	closed    chan struct{}
	closeOnce sync.Once
	dropped   atomic.Uint64
}

// NewDevice returns a device with the given MTU whose queues hold queue
// frames each.
func NewDevice(mtu, queue int) *Device {
	return &Device{
		mtu:    mtu,
		in:     make(chan []byte, queue),
		out:    make(chan []byte, queue),
		closed: make(chan struct{}),
	}
}

// Inject queues a copy of frame as if a host on the bridge had sent it.
// It blocks while the queue is full and returns false once closed.
func (d *Device) Inject(frame []byte) bool {
	select {
	case d.in <- append([]byte(nil), frame...):
		return true
	case <-d.closed:
		return false
	}
}

// Delivered returns the frames the router wrote to the device.
func (d *Device) Delivered() <-chan []byte { return d.out }

// Dropped counts written frames lost because Delivered was full.
func (d *Device) Dropped() uint64 { return d.dropped.Load() }

// Read implements router.Device: it blocks for one frame, then takes as
// many more as are queued.
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case f := <-d.in:
		sizes[0] = copy(bufs[0][offset:], f)
	case <-d.closed:
		return 0, ErrClosed
	}
	n := 1
	for n < len(bufs) {
		select {
		case f := <-d.in:
			sizes[n] = copy(bufs[n][offset:], f)
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

// Write implements router.Device: it copies each frame to Delivered, or
// drops it when Delivered is full.
func (d *Device) Write(bufs [][]byte, offset int) (int, error) {
	select {
	case <-d.closed:
		return 0, ErrClosed
	default:
	}
	for _, b := range bufs {
		select {
		case d.out <- append([]byte(nil), b[offset:]...):
		default:
			d.dropped.Add(1)
		}
	}
	return len(bufs), nil
}

// MTU implements router.Device.
func (d *Device) MTU() int { return d.mtu }

// Close implements router.Device; blocked Reads return ErrClosed.
func (d *Device) Close() error {
	d.closeOnce.Do(func() { close(d.closed) })
	return nil
}
