package tap

import (
	"fmt"
	"os"
)

// OpenOffloadQueues is OpenOffload for a multi-queue TAP, so that the
// router can run one reader per queue: it creates the TAP name with
// IFF_MULTI_QUEUE, attaches queues descriptors to it, sets the MTU and
// transmit queue length once and returns one Device per queue, each a
// complete router.Device (Read, Write, Close) used by its own goroutines.
//
// The kernel picks the queue of each frame it hands the TAP by a hash of
// the frame's flow, so one flow's frames come in order on one queue; a
// flow whose frames were last written on a queue is steered to that
// queue. Closing a queue leaves the others working; the TAP disappears
// with the last one.
//
// With queues <= 1 it is OpenOffload (no IFF_MULTI_QUEUE) and returns one
// Device. When the kernel refuses the multi-queue device the error wraps
// ErrMultiQueue and nothing is left open; the caller may fall back to
// OpenOffload.
func OpenOffloadQueues(name string, mtu int, tso bool, queues int) ([]*Device, error) {
	if queues <= 1 {
		d, err := OpenOffload(name, mtu, tso)
		if err != nil {
			return nil, err
		}
		return []*Device{d}, nil
	}
	files := make([]*os.File, 0, queues)
	closeFiles := func() {
		for _, f := range files {
			f.Close()
		}
	}
	for i := range queues {
		f, err := openVnetTAP(name, tso, true)
		if err != nil {
			closeFiles()
			return nil, fmt.Errorf("open tap %s: queue %d of %d: %w", name, i, queues, err)
		}
		files = append(files, f)
	}
	if err := configure(name, mtu); err != nil {
		closeFiles()
		return nil, fmt.Errorf("open tap %s: %w", name, err)
	}
	devs := make([]*Device, 0, queues)
	for i, f := range files {
		d, err := newDevice(f, name, mtu, true)
		if err != nil {
			// newDevice closed f; close the queues wrapped and not yet wrapped.
			for _, d := range devs {
				d.Close()
			}
			files = files[i+1:]
			closeFiles()
			return nil, err
		}
		d.tso = tso
		d.queues = queues
		devs = append(devs, d)
	}
	return devs, nil
}

// Queues is how many queues the device's TAP was opened with: 1 for Open
// and OpenOffload, the queues given to OpenOffloadQueues otherwise.
func (d *Device) Queues() int { return d.queues }
