package tap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/router"
)

// testNS is a fresh named network namespace for one root test.
type testNS struct {
	name string
	fd   int
}

func newTestNS(t *testing.T) *testNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, TAP)")
	}
	name := fmt.Sprintf("wefttap%d", os.Getpid())
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	fd, err := unix.Open("/var/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	ns := &testNS{name: name, fd: fd}
	ns.exec(t, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	return ns
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (ns *testNS) exec(t *testing.T, args ...string) {
	t.Helper()
	run(t, append([]string{"ip", "netns", "exec", ns.name}, args...)...)
}

// do runs fn on a thread switched into the namespace. The thread is
// returned to the original namespace, or discarded if that fails.
func (ns *testNS) do(t *testing.T, fn func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(ns.fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("restore namespace: %w", err) // thread dies locked
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

const tapName = "weftt0"

func openTest(t *testing.T, ns *testNS) *Device {
	return openTestWith(t, ns, func() (*Device, error) { return Open(tapName, 1400) })
}

func openTestWith(t *testing.T, ns *testNS, open func() (*Device, error)) *Device {
	t.Helper()
	var d *Device
	ns.do(t, func() (err error) {
		d, err = open()
		return err
	})
	t.Cleanup(func() { d.Close() })
	ns.exec(t, "ip", "link", "set", tapName, "up")
	ns.exec(t, "ip", "addr", "add", "10.99.0.1/24", "dev", tapName)
	return d
}

func bufs(n, size int) ([][]byte, []int) {
	b := make([][]byte, n)
	for i := range b {
		b[i] = make([]byte, size)
	}
	return b, make([]int, n)
}

// readUntil reads batches until done says enough, failing after a while.
func readUntil(t *testing.T, d *Device, offset int, done func(frame []byte) bool) (batchSizes []int) {
	t.Helper()
	b, sizes := bufs(16, offset+1600)
	timer := time.AfterFunc(5*time.Second, func() { d.Close() })
	defer timer.Stop()
	for {
		n, err := d.Read(b, sizes, offset)
		if err != nil {
			t.Fatalf("read: %v (batches so far %v)", err, batchSizes)
		}
		batchSizes = append(batchSizes, n)
		for i := range n {
			if done(b[i][offset : offset+sizes[i]]) {
				return batchSizes
			}
		}
	}
}

func arpTarget(f []byte) (net.IP, bool) {
	if len(f) < 42 || binary.BigEndian.Uint16(f[12:]) != 0x0806 || binary.BigEndian.Uint16(f[20:]) != 1 {
		return nil, false
	}
	return net.IP(f[38:42]), true
}

func TestReadBatchAndWrite(t *testing.T) {
	ns := newTestNS(t)
	readBatchAndWrite(t, ns, openTest(t, ns))
}

func TestOffloadReadBatchAndWrite(t *testing.T) {
	ns := newTestNS(t)
	d := openTestWith(t, ns, func() (*Device, error) { return OpenOffload(tapName, 1400, true) })
	if !d.VnetHdr() {
		t.Fatal("OpenOffload device has no virtio-net header")
	}
	readBatchAndWrite(t, ns, d)
}

// readBatchAndWrite checks batched reads and a write on d. For a device
// with virtio-net headers the header before each frame read must be zero
// (ARP and an unoffloaded UDP datagram need no offload), and writes carry
// a zero header.
func readBatchAndWrite(t *testing.T, ns *testNS, d *Device) {
	if d.MTU() != 1400 {
		t.Errorf("MTU() = %d", d.MTU())
	}
	if out, err := exec.Command("ip", "-n", ns.name, "-o", "link", "show", tapName).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), fmt.Sprintf("qlen %d", TxQueueLen)) {
		t.Errorf("tap queue length not set to %d: %s %v", TxQueueLen, out, err)
	}
	// Datagrams to eight unresolved neighbours queue eight ARP requests.
	var sock int
	ns.do(t, func() (err error) {
		sock, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	t.Cleanup(func() { unix.Close(sock) })
	for i := 2; i < 10; i++ {
		sa := &unix.SockaddrInet4{Port: 9, Addr: [4]byte{10, 99, 0, byte(i)}}
		if err := unix.Sendto(sock, []byte("weft"), 0, sa); err != nil {
			t.Fatal(err)
		}
	}
	const offset = 32
	seen := map[string]bool{}
	var tapMAC net.HardwareAddr
	batches := readUntil(t, d, offset, func(f []byte) bool {
		if d.VnetHdr() {
			// f is bufs[i][offset:]; its header sits just before.
			hdr := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(f)), -router.VnetHdrLen)), router.VnetHdrLen)
			if !bytes.Equal(hdr, make([]byte, router.VnetHdrLen)) {
				t.Errorf("virtio-net header of an ARP frame: % x", hdr)
			}
		}
		if ip, ok := arpTarget(f); ok {
			seen[ip.String()] = true
			tapMAC = net.HardwareAddr(bytes.Clone(f[6:12]))
		}
		return len(seen) == 8
	})
	if batches[0] < 2 {
		t.Errorf("first Read returned %d frame(s) with 8 queued; batches %v", batches[0], batches)
	}

	// An ARP reply written to the TAP resolves 10.99.0.2, and the kernel
	// then sends the queued datagram to the MAC we gave.
	peer := net.HardwareAddr{2, 0, 0, 0, 0, 2}
	reply := make([]byte, offset, offset+42)
	reply = append(reply, tapMAC...)
	reply = append(reply, peer...)
	reply = append(reply, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2)
	reply = append(reply, peer...)
	reply = append(reply, 10, 99, 0, 2)
	reply = append(reply, tapMAC...)
	reply = append(reply, 10, 99, 0, 1)
	if n, err := d.Write([][]byte{reply}, offset); n != 1 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	readUntil(t, d, offset, func(f []byte) bool {
		return len(f) >= 34 && bytes.Equal(f[:6], peer) &&
			binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == unix.IPPROTO_UDP &&
			bytes.Equal(f[30:34], []byte{10, 99, 0, 2})
	})
}

func TestWriteRejectsRunt(t *testing.T) {
	ns := newTestNS(t)
	d := openTest(t, ns)
	good := make([]byte, 60)
	copy(good, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 9, 0x88, 0xb5})
	n, err := d.Write([][]byte{good, {1, 2}}, 0)
	if n != 1 || err == nil {
		t.Errorf("Write(good, runt) = %d, %v; want 1 and an error", n, err)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	ns := newTestNS(t)
	var d *Device
	ns.do(t, func() (err error) {
		d, err = Open(tapName, 1500)
		return err
	})
	errc := make(chan error, 1)
	go func() {
		b, sizes := bufs(4, 2000)
		_, err := d.Read(b, sizes, 0)
		errc <- err
	}()
	d.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Read after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked after Close")
	}
}

func TestSteadyStateAllocs(t *testing.T) {
	ns := newTestNS(t)
	d := openTest(t, ns)
	// An ARP request for the TAP's own address makes the kernel answer.
	peer := net.HardwareAddr{2, 0, 0, 0, 0, 3}
	req := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	req = append(req, peer...)
	req = append(req, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1)
	req = append(req, peer...)
	req = append(req, 10, 99, 0, 3, 0, 0, 0, 0, 0, 0, 10, 99, 0, 1)
	out := [][]byte{req}
	in, sizes := bufs(8, 1600)
	exchange := func() {
		if _, err := d.Write(out, 0); err != nil {
			t.Fatal(err)
		}
		for {
			n, err := d.Read(in, sizes, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				f := in[i][:sizes[i]]
				if len(f) >= 42 && bytes.Equal(f[:6], peer) && binary.BigEndian.Uint16(f[20:]) == 2 {
					return
				}
			}
		}
	}
	exchange()
	if allocs := testing.AllocsPerRun(50, exchange); allocs != 0 {
		t.Errorf("%.1f allocations per write+read, want 0", allocs)
	}
}
