package router

import "testing"

// FuzzDecode feeds arbitrary datagrams to the decoder: it must never
// panic, and records it accepts must lie inside the datagram.
func FuzzDecode(f *testing.F) {
	f.Add(encodeFrames(1, Record{Type: RecordFrame, Src: 1, Dst: 2, Frame: make([]byte, 60)}))
	hb := make([]byte, 64)
	f.Add(hb[:putHeartbeat(hb, 3, 1, 42)])
	f.Add([]byte{1, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, body, err := ParseHeader(b)
		if err != nil {
			return
		}
		switch h.Type {
		case TypeHeartbeat:
			_, _ = parseHeartbeat(body)
		case TypeProbe:
			_, _, _ = parseProbe(body)
		case TypeProbeAck:
			_, _, _, _ = parseProbeAck(body)
		}
		for off := 0; off < len(body); {
			r, n, err := ParseRecord(body[off:])
			if err != nil {
				return
			}
			if n < RecordHeaderLen || off+n > len(body) || len(r.Frame) != n-RecordHeaderLen {
				t.Fatalf("record of %d bytes at %d in %d", n, off, len(body))
			}
			off += n
		}
	})
}
