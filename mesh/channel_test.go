package mesh

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestPlainChannelRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	ch := newPlainChannel(&buf, 100)
	msgs := [][]byte{{tagHeartbeat}, bytes.Repeat([]byte{7}, 100), []byte{tagClose, 'x'}}
	for _, m := range msgs {
		if err := ch.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range msgs {
		got, err := ch.ReadMsg()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("ReadMsg = %x, %v; want %x", got, err, want)
		}
	}
	if _, err := ch.ReadMsg(); err != io.EOF {
		t.Fatalf("at end: %v", err)
	}
}

func TestPlainChannelErrors(t *testing.T) {
	ch := newPlainChannel(&bytes.Buffer{}, 10)
	if err := ch.WriteMsg(make([]byte, 11)); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("write too large: %v", err)
	}
	if err := ch.WriteMsg(nil); !errors.Is(err, ErrEmptyMessage) {
		t.Errorf("write empty: %v", err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"too large", []byte{0, 0, 0, 11}, ErrMessageTooLarge},
		{"huge", []byte{0xff, 0xff, 0xff, 0xff}, ErrMessageTooLarge},
		{"empty", []byte{0, 0, 0, 0}, ErrEmptyMessage},
		{"short header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"short body", []byte{0, 0, 0, 3, 1}, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := newPlainChannel(struct {
				io.Reader
				io.Writer
			}{bytes.NewReader(tc.in), io.Discard}, 10)
			if _, err := ch.ReadMsg(); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
