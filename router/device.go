package router

import "net/netip"

// Device is the host side of the virtual switch: the TAP device attached to
// the weft bridge. Frames are whole Ethernet frames (no FCS).
//
// Buffers are owned by the caller. Read and Write are each called from one
// goroutine at a time, but a Read and a Write may run concurrently.
type Device interface {
	// Read blocks until at least one frame is available, then reads up to
	// len(bufs) frames, frame i into bufs[i][offset:], and stores its length
	// in sizes[i]. It returns the number of frames read. The offset leaves
	// headroom in front of each frame for encapsulation headers.
	Read(bufs [][]byte, sizes []int, offset int) (n int, err error)
	// Write writes each bufs[i][offset:] as one frame. It returns the number
	// of frames written.
	Write(bufs [][]byte, offset int) (n int, err error)
	// MTU is the largest IP packet (Ethernet payload) the device carries.
	MTU() int
	// Close releases the device and makes blocked Reads return an error.
	Close() error
}

// Datagram is one UDP datagram of a batch handed to or from a Transport.
type Datagram struct {
	// Buf holds the datagram. On receive the Transport fills Buf[:N]; on send
	// Buf is sent whole.
	Buf []byte
	// N is the received length.
	N int
	// Addr is the remote address: the source on receive, the destination on
	// send.
	Addr netip.AddrPort
	// Segment, when not zero on send, says that Buf holds several
	// datagrams to Addr, each Segment bytes long but the last (which may
	// be shorter): a Transport that is a Segmenter sends them with one
	// UDP segmentation offload call. Only set it below MaxSegments.
	// On receive, a Transport that coalesces (as Linux does with UDP_GRO)
	// sets it when Buf[:N] holds such a train from Addr.
	Segment int
}

// MultiQueue is implemented by a Device that has several queues on one
// interface, as a multi-queue TAP has: the kernel spreads the frames it
// hands the device over the queues by flow. The router runs a reader on
// each queue (the Device's own Read is not called), writes through the
// Device, and closes only the Device, whose Close must close every queue.
type MultiQueue interface {
	// ReadQueues returns the queues to read, each used by one goroutine.
	ReadQueues() []Device
}

// MultiSocket is implemented by a Transport made of several sockets on
// one port (Linux SO_REUSEPORT): the kernel hands each remote address to
// one of them. The router runs a reader on each socket (the Transport's
// own ReadBatch is not called), sends through the Transport, and closes
// only the Transport, whose Close must close every socket.
type MultiSocket interface {
	// ReadSockets returns the sockets to read, each used by one goroutine.
	ReadSockets() []Transport
}

// OffloadReporter is implemented by a Device or Transport that can say
// which offloads it uses, by name ("tap_tso", "udp_gro", ...), for
// status reports.
type OffloadReporter interface {
	Offloads() map[string]bool
}

// Segmenter is implemented by a Transport that can send a train of
// equal-sized datagrams at once (Datagram.Segment), as Linux does with
// UDP_SEGMENT.
//
// A path may refuse trains where the socket takes them (Linux: EIO from a
// route through a device without checksum offload). WriteBatch then
// returns an error wrapping ErrTrainRefused for that train, and the router
// sends it again datagram by datagram and sends that peer no trains for a
// while (TrainRetry); other peers keep theirs.
type Segmenter interface {
	// MaxSegments is the most datagrams one train may hold; 0 when the
	// socket cannot segment.
	MaxSegments() int
}

// Transport is the UDP socket the mesh's data travels on. All datagrams
// are sent with the IPv4 "don't fragment" bit set so that path MTU
// probing works.
//
// ReadBatch is called from one goroutine; WriteBatch may be called from
// several concurrently.
type Transport interface {
	// ReadBatch blocks until at least one datagram arrives, then fills up to
	// len(dgrams) datagrams and returns how many.
	ReadBatch(dgrams []Datagram) (n int, err error)
	// WriteBatch sends the datagrams and returns how many were sent. An
	// error for one datagram (for instance EMSGSIZE when it exceeds the
	// known path MTU) is returned with the count of those sent before it;
	// the caller decides whether to skip it and continue.
	WriteBatch(dgrams []Datagram) (n int, err error)
	// LocalPort is the UDP port the transport is bound to.
	LocalPort() uint16
	// Close closes the socket; blocked calls return an error.
	Close() error
}

// VnetHdrLen is the length of the virtio-net header (struct
// virtio_net_hdr) that an offloading device exchanges with each frame.
const VnetHdrLen = 10

// Offloader is implemented by a Device that can exchange a virtio-net
// header with each frame, as a Linux TAP with IFF_VNET_HDR does. When
// VnetHdr reports true, Read places each frame's header in the
// VnetHdrLen bytes just before the frame (bufs[i][offset-VnetHdrLen:
// offset]; the caller's offset must be at least VnetHdrLen) and a frame
// may be a TCP segmentation offload "super-frame" of up to 64 KB; Write
// likewise takes each frame's header from the VnetHdrLen bytes before it.
// An all-zero header means a plain, fully checksummed frame.
type Offloader interface {
	VnetHdr() bool
}
