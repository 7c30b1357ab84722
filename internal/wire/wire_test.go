package wire

import (
	"errors"
	"testing"
)

var errShort = errors.New("short")

func TestDecoder(t *testing.T) {
	d := NewDecoder([]byte{1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 5, 2, 'h', 'i', 9}, errShort)
	if d.U8() != 1 || d.U16() != 2 || d.U32() != 3 || d.U48() != 4 || d.U64() != 5 || d.Str8() != "hi" || d.Err() != nil {
		t.Fatalf("reads: err %v", d.Err())
	}
	if d.Len() != 1 || d.Done() == nil {
		t.Fatalf("one trailing byte: len %d, done %v", d.Len(), d.Done())
	}
	if r := d.Rest(); len(r) != 1 || r[0] != 9 || d.Done() != nil {
		t.Fatalf("rest %v, done %v", r, d.Done())
	}
	if d.U32() != 0 || !errors.Is(d.Err(), errShort) || d.U8() != 0 || d.Rest() != nil {
		t.Fatal("a read past the end must record the truncation error and return zero values from then on")
	}
	d.Fail(errors.New("later"))
	if !errors.Is(d.Err(), errShort) {
		t.Fatal("Fail replaced the first error")
	}
	if d := NewDecoder(nil, errShort); d.Take(-1) != nil || d.Err() == nil {
		t.Fatal("a negative length must fail")
	}
}

func FuzzDecoder(f *testing.F) {
	f.Add([]byte{3, 'a', 'b', 'c', 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDecoder(b, errShort)
		for d.Err() == nil && d.Len() > 0 {
			switch d.U8() % 6 {
			case 0:
				d.U16()
			case 1:
				d.U32()
			case 2:
				d.U48()
			case 3:
				d.U64()
			case 4:
				d.Str8()
			case 5:
				d.Take(int(d.U8()))
			}
		}
	})
}
