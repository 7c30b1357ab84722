package secure_test

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/weftnet/weft/secure"
)

// pipe is a toy message channel: what one side writes the other reads.
type pipe struct{ in, out chan []byte }

func (p pipe) WriteMsg(b []byte) error  { p.out <- append([]byte(nil), b...); return nil }
func (p pipe) ReadMsg() ([]byte, error) { return <-p.in, nil }

// Example shows how the mesh runs the handshake on a control connection
// and how the router seals and opens datagrams with the resulting keys.
func Example() {
	// Once per router, at start (slow on purpose).
	psk, err := secure.DerivePSK([]byte("correct horse battery staple"))
	if err != nil {
		fmt.Println(err)
		return
	}
	a2b, b2a := make(chan []byte, 4), make(chan []byte, 4)
	dialer, acceptor := pipe{in: b2a, out: a2b}, pipe{in: a2b, out: b2a}
	hdrA, hdrB := []byte("weft\x01\x01\x01"), []byte("weft\x01\x01\x01") // the plain headers exchanged first
	if err := secure.CheckPasswordFlags(true, true); err != nil {
		fmt.Println(secure.Reason(err)) // refuse the connection
		return
	}

	// Per connection: the dialler is the initiator.
	ih, _ := secure.NewInitiator(secure.Config{PSK: psk, LocalHeader: hdrA, RemoteHeader: hdrB, Payload: []byte("features of A")})
	rh, _ := secure.NewResponder(secure.Config{PSK: psk, LocalHeader: hdrB, RemoteHeader: hdrA, Payload: []byte("features of B")})
	done := make(chan *secure.Session)
	go func() {
		s, err := rh.Run(acceptor.WriteMsg, acceptor.ReadMsg)
		if err != nil {
			fmt.Println(secure.Reason(err))
		}
		done <- s
	}()
	sa, err := ih.Run(dialer.WriteMsg, dialer.ReadMsg)
	if err != nil {
		fmt.Println(secure.Reason(err))
		return
	}
	sb := <-done
	fmt.Printf("A learned %q, B learned %q\n", sa.RemotePayload(), sb.RemotePayload())

	// Control messages from now on go through the sealed channel.
	ca, cb := secure.NewControlChannel(dialer, sa), secure.NewControlChannel(acceptor, sb)
	_ = ca.WriteMsg([]byte("gossip"))
	msg, _ := cb.ReadMsg()
	fmt.Printf("control: %s\n", msg)

	// Data plane: header (20 bytes, router layout), body, 16 bytes of tag room.
	now := time.Now()
	ra, _ := sa.NewKeyRing(secure.RekeyPolicy{}, now)
	rb, _ := sb.NewKeyRing(secure.RekeyPolicy{}, now)
	buf := make([]byte, 20+5+secure.TagLen)
	copy(buf[20:], "frame")
	s, ctr, _ := ra.Reserve(now)
	buf[3] = s.KeyID()
	binary.BigEndian.PutUint64(buf[12:20], ctr)
	sealed, _ := s.Seal(ctr, buf[:20], buf[20:25])

	// Receiver: parse key id and counter from the header, open in place.
	plain, err := rb.Open(buf[3], binary.BigEndian.Uint64(buf[12:20]), buf[:20], sealed, now)
	fmt.Printf("data: %s %v\n", plain, err)
	// Output:
	// A learned "features of B", B learned "features of A"
	// control: gossip
	// data: frame <nil>
}
