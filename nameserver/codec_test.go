package nameserver

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestRecordSetRoundTrip(t *testing.T) {
	in := NewRecordSet(
		Record{Name: "Web.weft.local.", Addr: ip("10.32.0.1"), Owner: peerA, Target: "netns:c1", Version: 7},
		Record{Name: "db.weft.local.", Addr: ip("10.32.0.2"), Owner: peerB, Version: 2, Tombstone: true},
	)
	msgs := in.Encode()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	out, err := DecodeRecordSet(msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out.Records(), in.Records(); !slices.EqualFunc(got, want, Record.Equal) {
		t.Fatalf("round trip:\n got %v\nwant %v", got, want)
	}
	if NewRecordSet().Encode() != nil {
		t.Error("empty set encoded to messages")
	}
}

func TestRecordSetEncodeSplits(t *testing.T) {
	set := NewRecordSet()
	long := strings.Repeat("a", 55)
	for i := range 2000 {
		set.add(Record{Name: fmt.Sprintf("%s%d.%s.weft.local.", long, i, long), Addr: ip("10.0.0.1"),
			Owner: peerA, Target: strings.Repeat("t", 100), Version: 1})
	}
	msgs := set.Encode()
	if len(msgs) < 2 {
		t.Fatalf("%d messages for ~450 KB of records", len(msgs))
	}
	total := NewRecordSet()
	for _, m := range msgs {
		if len(m) > MaxEncodedSize {
			t.Fatalf("message of %d bytes", len(m))
		}
		part, err := DecodeRecordSet(m)
		if err != nil {
			t.Fatal(err)
		}
		total.Merge(part)
	}
	if total.Len() != set.Len() {
		t.Fatalf("decoded %d records, want %d", total.Len(), set.Len())
	}
}

func TestDecodeRecordSetErrors(t *testing.T) {
	good := NewRecordSet(Record{Name: "x.weft.local.", Addr: ip("10.0.0.1"), Owner: peerA, Version: 1}).Encode()[0]
	mod := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	for _, tc := range []struct {
		desc string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"future format", mod(func(b []byte) []byte { b[0] = 4; return b }), ErrUnsupportedFormat},
		{"format 1 (32-bit versions)", mod(func(b []byte) []byte { b[0] = 1; return b }), ErrUnsupportedFormat},
		{"format 2 (unsigned)", mod(func(b []byte) []byte { b[0] = 2; return b }), ErrUnsupportedFormat},
		{"truncated signature", good[:len(good)-SigLen], ErrMalformed},
		{"count too high", mod(func(b []byte) []byte { b[2] = 2; return b }), ErrMalformed},
		{"truncated", good[:len(good)-1], ErrMalformed},
		{"trailing bytes", append(slices.Clone(good), 0), ErrMalformed},
		{"unknown flag", mod(func(b []byte) []byte { b[3+14] = 2; return b }), ErrMalformed},
		{"version zero", mod(func(b []byte) []byte { copy(b[3+6:], make([]byte, 8)); return b }), ErrMalformed},
		{"version above MaxVersion", mod(func(b []byte) []byte { b[3+6] = 0x80; return b }), ErrMalformed},
		{"no owner", mod(func(b []byte) []byte { copy(b[3:], make([]byte, 6)); return b }), ErrMalformed},
		{"bad name", mod(func(b []byte) []byte { b[3+20] = '.'; return b }), ErrInvalidName},
		{"zero address", mod(func(b []byte) []byte { copy(b[3+15:], make([]byte, 4)); return b }), ErrInvalidAddr},
		{"too large", make([]byte, MaxEncodedSize+1), ErrTooLarge},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := DecodeRecordSet(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzDecodeRecordSet(f *testing.F) {
	f.Add(NewRecordSet(
		Record{Name: "Web.weft.local.", Addr: ip("10.32.0.1"), Owner: peerA, Target: "netns:c1", Version: 7},
		Record{Name: "db.weft.local.", Addr: ip("10.32.0.2"), Owner: peerB, Version: 2, Tombstone: true},
	).Encode()[0])
	f.Add([]byte{2, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		set, err := DecodeRecordSet(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to something that decodes the same.
		msgs := set.Encode()
		again := NewRecordSet()
		for _, m := range msgs {
			part, err := DecodeRecordSet(m)
			if err != nil {
				t.Fatalf("re-encoded set does not decode: %v", err)
			}
			again.Merge(part)
		}
		if !slices.EqualFunc(again.Records(), set.Records(), Record.Equal) {
			t.Fatalf("re-encoding changed the set")
		}
	})
}
