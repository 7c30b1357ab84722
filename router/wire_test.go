package router

import (
	"bytes"
	"errors"
	"testing"

	"github.com/weftnet/weft/mesh"
)

func TestHeaderRoundTrip(t *testing.T) {
	b := make([]byte, 64)
	want := Header{Type: TypeFrames, Flags: 0, KeyID: 7, Sender: 0x0a0b0c0d0e0f, Counter: 1<<63 + 5}
	PutHeader(b, want)
	PutTag(b[HeaderLen+4:])
	got, body, err := ParseHeader(b[:HeaderLen+4+TagLen])
	if err != nil {
		t.Fatal(err)
	}
	if got != want || len(body) != 4 {
		t.Fatalf("got %+v body %d, want %+v body 4", got, len(body), want)
	}
	if b[0] != Version || b[10] != 0 || b[11] != 0 {
		t.Fatalf("bad fixed bytes % x", b[:HeaderLen])
	}
}

func TestParseHeaderErrors(t *testing.T) {
	good := make([]byte, DatagramOverhead)
	PutHeader(good, Header{Type: TypeHeartbeat, Sender: 1})
	badVer := bytes.Clone(good)
	badVer[0] = 9
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShortDatagram},
		{"short", good[:DatagramOverhead-1], ErrShortDatagram},
		{"version", badVer, ErrBadVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := ParseHeader(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRecordRoundTrip(t *testing.T) {
	frame := bytes.Repeat([]byte{0xab}, 60)
	b := make([]byte, 200)
	n := PutRecord(b, RecordFrame, 0x010203040506, BroadcastPeer, frame)
	n += PutRecord(b[n:], RecordFrame, 7, 8, frame[:14])
	body := b[:n]
	var got []Record
	for off := 0; off < len(body); {
		r, m, err := ParseRecord(body[off:])
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
		off += m
	}
	if len(got) != 2 || got[0].Src != 0x010203040506 || got[0].Dst != BroadcastPeer ||
		!bytes.Equal(got[0].Frame, frame) || got[1].Src != 7 || got[1].Dst != 8 || len(got[1].Frame) != 14 {
		t.Fatalf("got %+v", got)
	}
}

func TestParseRecordErrors(t *testing.T) {
	b := make([]byte, 100)
	PutRecord(b, RecordFrame, 1, 2, make([]byte, 20))
	short := make([]byte, 40)
	PutRecord(short, RecordFrame, 1, 2, make([]byte, 10))
	seg := make([]byte, 40)
	PutRecord(seg, RecordSegment, 1, 2, make([]byte, 4))
	tests := []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"truncated header", b[:RecordHeaderLen-1], false},
		{"truncated frame", b[:RecordHeaderLen+19], false},
		{"frame shorter than ethernet", short[:RecordHeaderLen+10], false},
		{"other record type may be short", seg[:RecordHeaderLen+4], true},
		{"exact", b[:RecordHeaderLen+20], true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseRecord(tc.b)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadRecord) {
				t.Fatalf("err %v is not ErrBadRecord", err)
			}
		})
	}
}

func TestControlBodies(t *testing.T) {
	b := make([]byte, 2000)
	n := putHeartbeat(b, 5, 1, 0xfeed)
	h, body, err := ParseHeader(b[:n])
	if err != nil || h.Type != TypeHeartbeat || h.Sender != 5 {
		t.Fatalf("heartbeat header %+v %v", h, err)
	}
	if uid, err := parseHeartbeat(body); err != nil || uid != 0xfeed {
		t.Fatalf("heartbeat uid %x %v", uid, err)
	}
	n = putProbe(b, 1400, 5, 2, 0xfeed, 9)
	if n != 1400 {
		t.Fatalf("probe length %d", n)
	}
	_, body, _ = ParseHeader(b[:n])
	if uid, id, err := parseProbe(body); err != nil || uid != 0xfeed || id != 9 {
		t.Fatalf("probe %x %d %v", uid, id, err)
	}
	n = putProbeAck(b, 6, 3, 0xfeed, 9, 1400)
	_, body, _ = ParseHeader(b[:n])
	if uid, id, size, err := parseProbeAck(body); err != nil || uid != 0xfeed || id != 9 || size != 1400 {
		t.Fatalf("probe ack %x %d %d %v", uid, id, size, err)
	}
	if _, err := parseHeartbeat(body); !errors.Is(err, ErrBadBody) {
		t.Fatalf("heartbeat of a probe-ack body: %v", err)
	}
}

// encodeFrames builds a frames datagram from sender with the given records.
func encodeFrames(sender mesh.PeerName, recs ...Record) []byte {
	b := make([]byte, MaxDatagram)
	PutHeader(b, Header{Type: TypeFrames, Sender: sender, Counter: 1})
	n := HeaderLen
	for _, r := range recs {
		n += PutRecord(b[n:], r.Type, r.Src, r.Dst, r.Frame)
	}
	PutTag(b[n:])
	return b[:n+TagLen]
}

func TestDecodeNoAllocs(t *testing.T) {
	d := encodeFrames(1, Record{Type: RecordFrame, Src: 1, Dst: 2, Frame: make([]byte, 100)},
		Record{Type: RecordFrame, Src: 1, Dst: 0, Frame: make([]byte, 60)})
	allocs := testing.AllocsPerRun(100, func() {
		_, body, _ := ParseHeader(d)
		for off := 0; off < len(body); {
			_, n, err := ParseRecord(body[off:])
			if err != nil {
				t.Fatal(err)
			}
			off += n
		}
	})
	if allocs != 0 {
		t.Fatalf("decode allocates %v times", allocs)
	}
}
